"""Runs jobs: a job's steps as subprocesses in a workspace, reporting through `schemas.jobs`.

Imports schemas and the standard library only, never store or engine, so that it can run on a
build host that has no database.
"""
