"""The HTTP API: FastAPI app, v5 routes, IAM tokens, error rendering.

Imports engine, store (reads), auth, schemas, domain and settings.
"""
