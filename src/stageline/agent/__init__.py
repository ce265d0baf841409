"""The build agent: claims jobs from a server over signed HTTP, runs their steps as
subprocesses in a workspace, and reports back through `schemas.jobs`.

Imports schemas, `auth.signing`, `gitrepo` (to check code out), httpx and the standard library,
never store or engine, so that it runs on a build host that has no database.
"""
