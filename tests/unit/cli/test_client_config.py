"""The client's config file: where it is, what survives a round trip, and its mode."""

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stageline.cli.client.config import Config, Profile, config_path, load, save
from stageline.cli.client.errors import ConfigError


class TestConfigPath:
    def test_stageline_config_comes_first(self, tmp_path: Path) -> None:
        env = {"STAGELINE_CONFIG": str(tmp_path / "c.toml"), "XDG_CONFIG_HOME": "/elsewhere"}
        assert config_path(env) == tmp_path / "c.toml"

    def test_then_the_xdg_config_home(self) -> None:
        assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/stageline/config.toml")

    def test_else_the_home_directory(self) -> None:
        assert config_path({}) == Path.home() / ".config" / "stageline" / "config.toml"


class TestSave:
    def test_profiles_survive_a_round_trip_whatever_their_characters(self, tmp_path: Path) -> None:
        path = tmp_path / "config.toml"
        odd = 'quote " backslash \\ newline \n tab \t del \x7f unicode é ✓'
        profiles = {
            "default": Profile(server="http://h:1", project="p" * 32, user=odd, token="t"),
            "ci prod": Profile(server="https://ci", ak="AK", sk=odd),
        }
        save(Config(path, profiles))
        assert load(path).profiles == profiles

    def test_the_file_is_private_whatever_the_umask(self, tmp_path: Path) -> None:
        path = tmp_path / "new" / "config.toml"
        previous = os.umask(0)
        try:
            save(Config(path, {"default": Profile(token="secret")}))
        finally:
            os.umask(previous)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    def test_a_file_opened_up_is_private_again_when_rewritten(self, tmp_path: Path) -> None:
        path = tmp_path / "config.toml"
        save(Config(path, {"default": Profile(token="one")}))
        path.chmod(0o644)
        save(Config(path, {"default": Profile(token="two")}))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary left

    def test_a_missing_file_is_no_profile_and_a_broken_one_an_error(self, tmp_path: Path) -> None:
        assert load(tmp_path / "none.toml").profiles == {}
        broken = tmp_path / "broken.toml"
        broken.write_text("[profiles.default\n")
        with pytest.raises(ConfigError, match="cannot read"):
            load(broken)


class TestTokenExpiry:
    NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("expires_at", "expired"),
        [
            ("2026-01-02T03:04:04.000000Z", True),
            ("2026-01-02T03:04:06.000000Z", False),
            ("", False),  # unknown: the server decides
            ("not a date", False),
        ],
    )
    def test_expired_when_the_stored_time_has_passed(self, expires_at: str, expired: bool) -> None:
        profile = Profile(token="t", token_expires_at=expires_at)
        assert profile.token_expired(self.NOW) is expired
