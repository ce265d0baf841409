"""The only code that changes a status: starting runs, applying executor events, stopping runs.

Imports domain, schemas, store and settings. Every status write goes through `engine.transitions`.
"""
