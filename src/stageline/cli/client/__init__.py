"""The command line a person uses against a running server: `login`, `status`, `run`, `logs`, ….

Talks HTTP only (httpx, the v5 API): it imports the wire vocabulary (domain.statuses, schemas),
AK/SK signing and nothing of the server's engine, store or API (an import-linter contract).
"""
