"""Pure rules: statuses, transitions, roll-up, the pipeline definition, and what a forge's
webhook delivery asks for (`webhooks`).

Imports only the standard library and pydantic; no I/O and no clock (callers pass `now`).
"""
