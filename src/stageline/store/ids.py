"""New identifiers in the CodeArts format: 32 hexadecimal characters."""

import uuid


def new_id() -> str:
    return uuid.uuid4().hex
