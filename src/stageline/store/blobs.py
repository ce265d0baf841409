"""Content-addressed file storage for artifacts: `<root>/<sha256[:2]>/<sha256>`.

A file is written to a temporary name and renamed into place once its digest is known, so a
reader never sees half a file and two uploads of the same content share one copy. How large a
file may be is the HTTP layer's to enforce (`api.body_limit`), before the bytes arrive here.
"""

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path


class Blobs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    async def save(self, chunks: AsyncIterator[bytes]) -> tuple[str, int]:
        """Store the stream; (sha256 hex, size)."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as file:
                async for chunk in chunks:
                    size += len(chunk)
                    digest.update(chunk)
                    file.write(chunk)
            sha256 = digest.hexdigest()
            target = self.path(sha256)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return sha256, size
