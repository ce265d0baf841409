"""Tests for `stageline.auth.vault`: sealing secret values under the master secret."""

import pytest

from stageline.auth.secrets import derive_secret_key
from stageline.auth.vault import PREFIX, SecretUnreadable, Vault, is_sealed

MASTER = b"master-secret-for-tests"
OTHER = b"another-master-secret"


class TestSealing:
    @pytest.mark.parametrize("plaintext", ["s3cr3t", "", "multi\nline\n", "ünicode-密码 ✓"])
    def test_a_sealed_value_opens_to_what_was_sealed(self, plaintext: str) -> None:
        vault = Vault(MASTER)
        sealed = vault.seal(plaintext)
        assert is_sealed(sealed)
        assert vault.open(sealed) == plaintext

    def test_the_plaintext_is_not_in_the_sealed_value(self) -> None:
        sealed = Vault(MASTER).seal("hunter2-hunter2")
        assert "hunter2" not in sealed
        assert sealed.startswith(PREFIX)

    def test_each_seal_is_different(self) -> None:
        vault = Vault(MASTER)
        assert vault.seal("same") != vault.seal("same")  # a fresh nonce each time

    def test_another_process_with_the_same_master_secret_opens_it(self) -> None:
        assert Vault(MASTER).open(Vault(MASTER).seal("shared")) == "shared"

    def test_a_value_stored_in_clear_opens_as_it_is(self) -> None:
        assert Vault(MASTER).open("stored-before-sealing") == "stored-before-sealing"

    def test_the_key_is_not_the_one_sks_are_derived_with(self) -> None:
        """A leaked SK says nothing about the sealing key: different labels, different keys."""
        sealed = Vault(MASTER).seal("x")
        assert derive_secret_key(MASTER, "x") not in sealed


class TestRefusals:
    def test_another_master_secret_cannot_open_it(self) -> None:
        with pytest.raises(SecretUnreadable, match="rotate-secrets"):
            Vault(OTHER).open(Vault(MASTER).seal("x"))

    def test_a_tampered_value_is_refused(self) -> None:
        sealed = Vault(MASTER).seal("value")
        flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
        with pytest.raises(SecretUnreadable, match="damaged"):
            Vault(MASTER).open(flipped)

    def test_the_key_id_is_authenticated(self) -> None:
        vault = Vault(MASTER, previous=[OTHER])
        sealed = vault.seal("value")
        other_id = Vault(OTHER).key_id
        moved = sealed.replace(vault.key_id, other_id, 1)
        with pytest.raises(SecretUnreadable):
            vault.open(moved)


class TestRotation:
    def test_previous_secrets_open_old_values_and_reseal_moves_them(self) -> None:
        old = Vault(OTHER).seal("rotated")
        vault = Vault(MASTER, previous=[OTHER])
        assert not vault.is_current(old)
        resealed = vault.reseal(old)
        assert vault.is_current(resealed)
        assert Vault(MASTER).open(resealed) == "rotated"

    def test_reseal_seals_a_value_in_clear_and_keeps_a_current_one(self) -> None:
        vault = Vault(MASTER)
        sealed = vault.reseal("in clear")
        assert vault.is_current(sealed)
        assert vault.open(sealed) == "in clear"
        assert vault.reseal(sealed) == sealed
