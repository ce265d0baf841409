"""Content-addressed file storage for artifacts: `<root>/<sha256[:2]>/<sha256>`.

A file is written to a temporary name and renamed into place once its digest is known, so a
reader never sees half a file and two uploads of the same content share one copy. Directories
are created 0700 and files 0600 (`mkstemp`'s mode, which the rename keeps): artifacts are read
through the API, with its checks, and by no one else.
"""

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from stageline.files import private_dir


class BlobTooLarge(Exception):
    pass


class Blobs:
    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    async def save(self, chunks: AsyncIterator[bytes]) -> tuple[str, int]:
        """Store the stream; (sha256 hex, size). Raises BlobTooLarge past `max_bytes`."""
        private_dir(self.root)
        digest = hashlib.sha256()
        size = 0
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as file:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise BlobTooLarge(f"artifacts are limited to {self.max_bytes} bytes")
                    digest.update(chunk)
                    file.write(chunk)
            sha256 = digest.hexdigest()
            target = self.path(sha256)
            private_dir(target.parent)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return sha256, size
