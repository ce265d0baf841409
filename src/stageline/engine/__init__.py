"""The only code that changes a status: run commands, agents' claims and reports, sweeps, schedules.

Imports domain, schemas, store and settings. Every status write goes through `engine.transitions`.
"""
