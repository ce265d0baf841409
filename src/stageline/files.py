"""Files only the server's own user may read: the data directory and what Stageline keeps in it
(the SQLite database with its -wal and -shm files, `secret.key`, artifacts).

Modes are given when a file or directory is created rather than through the process umask,
which is shared by every thread and inherited by the steps the built-in agent runs. Files an
earlier version created open to others (the database was 0644) are narrowed to 0600 when a
server or command next opens them; an existing directory keeps its mode, since it may be a
mount point or a directory the operator shares on purpose.
"""

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """`path`, created 0700 if it is missing (missing parents get the usual mode)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return path


def narrow(path: Path) -> None:
    """Take away every permission of group and others from an existing file."""
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)
            log.warning("%s was open to other users (mode %o); narrowed to owner only", path, mode)


def private_file(path: Path) -> Path:
    """`path`, created empty and 0600 if it is missing, else narrowed to its owner."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        narrow(path)
    return path
