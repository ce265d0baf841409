"""The only code that changes a status: run commands, agents' claims and reports, sweeps, schedules.

Imports domain, schemas, store, settings and `gitrepo` (to fix a new run's commits). Every
status write goes through `engine.transitions`.
"""
