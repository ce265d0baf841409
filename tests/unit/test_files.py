"""Tests for `stageline.files`: what Stageline keeps on disk is its user's alone."""

import os
import stat
from pathlib import Path

from stageline.files import private_dir, private_file
from stageline.settings import Settings
from stageline.store.database import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_directories_and_files_are_private(tmp_path: Path) -> None:
    directory = private_dir(tmp_path / "a" / "data")
    assert mode(directory) == 0o700
    assert mode(private_file(directory / "file")) == 0o600


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    assert mode(private_dir(shared)) == 0o755


def test_a_database_an_earlier_version_left_open_is_narrowed(tmp_path: Path) -> None:
    database = tmp_path / "stageline.db"
    wal = tmp_path / "stageline.db-wal"
    for path in (database, wal):
        path.touch()
        os.chmod(path, 0o644)
    Database(f"sqlite:///{database}").dispose()
    assert (mode(database), mode(wal)) == (0o600, 0o600)


def test_the_secret_key_file_is_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key="")
    secret = settings.master_secret()
    assert secret == settings.master_secret()  # written once, read back
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "secret.key") == 0o600
