"""The benchmark the repository carries (`make bench`, `python -m bench` from the repository root).

A seeded dataset written in bulk through the store layer, a server started the way production
runs it, a bare FastAPI app to set it against, load drivers in their own processes, and a results
table plus `bench/results/latest.json`. It is not part of the installed package: it imports
`stageline` (api, engine, auth, store, schemas, settings), and nothing in `stageline` imports it.
"""
