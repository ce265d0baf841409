"""Content-addressed file storage for artifacts: `<root>/<sha256[:2]>/<sha256>`.

A file is received into a temporary name and moved into place only when its owner says to keep
it, so a reader never sees half a file, two uploads of the same content share one copy, and a
file that is refused (or whose upload fails) leaves nothing behind. How large a file may be is
the HTTP layer's to enforce (`api.body_limit`), before the bytes arrive here. Directories
are created 0700 and files 0600 (`mkstemp`'s mode, which the rename keeps): artifacts are read
through the API, with its checks, and by no one else.
"""

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from stageline.files import private_dir

TEMPORARY_PREFIX = ".upload-"


class Received:
    """A file received in full, not in storage yet: `keep()` it or `discard()` it."""

    def __init__(self, temporary: Path, target: Path, *, sha256: str, size: int) -> None:
        self.sha256 = sha256
        self.size = size
        self._temporary = temporary
        self._target = target
        self._kept = False

    def keep(self) -> None:
        """Move the file into storage (atomically; the same content already there stays)."""
        private_dir(self._target.parent)
        os.replace(self._temporary, self._target)
        self._kept = True

    def discard(self) -> None:
        """Delete the file unless it was kept; safe to call more than once."""
        if not self._kept:
            self._temporary.unlink(missing_ok=True)


class Blobs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    async def receive(self, chunks: AsyncIterator[bytes]) -> Received:
        """Write the stream to a temporary file beside storage (so keeping it is a rename) and
        digest it; the file is deleted if the stream fails."""
        private_dir(self.root)
        digest = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(dir=self.root, prefix=TEMPORARY_PREFIX)
        temporary = Path(name)
        try:
            with os.fdopen(fd, "wb") as file:
                async for chunk in chunks:
                    size += len(chunk)
                    digest.update(chunk)
                    file.write(chunk)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        sha256 = digest.hexdigest()
        return Received(temporary, self.path(sha256), sha256=sha256, size=size)
