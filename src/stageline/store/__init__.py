"""SQL storage: engine and sessions, tables, migrations and every query.

Imports domain and settings only. Times are stored as UTC epoch milliseconds (BIGINT), the unit the
wire uses, so that SQLite and PostgreSQL behave identically.
"""
