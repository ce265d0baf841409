"""Identity: passwords, tokens, access keys, AK/SK request signing and project roles.

Imports store, domain and settings; `signing.py`, `secrets.py` and `roles.py` import nothing of
ours.
"""
