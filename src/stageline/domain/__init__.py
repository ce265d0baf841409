"""Pure rules: statuses, transitions, roll-up and the pipeline definition.

Imports only the standard library and pydantic; no I/O and no clock (callers pass `now`).
"""
