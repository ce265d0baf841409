"""The benchmark the repository carries (`stageline bench`, `make bench`).

A seeded dataset written in bulk through the store layer, a server started the way production
runs it, load drivers in their own processes, and a results table plus `bench/results/latest.json`.
Imports api, engine, auth, store, schemas and settings; nothing imports it but the CLI.
"""
