"""Wire models of the v5 API: what clients send (…Create, …Query) and what they receive (…Read).

Imports domain only. Input models are strict (no "true" for true) and ignore unknown keys, as the
official SDK's own models do; field names are the CodeArts ones verbatim.
"""
