"""Tests for `stageline.auth.secrets`: password hashes, token digests and access/secret keys."""

import re

import pytest

from stageline.auth.secrets import (
    check_password,
    derive_secret_key,
    hash_password,
    mint_token,
    new_access_key,
    token_digest,
)

MASTER = b"master-secret-for-tests"
AK = "HPUAEXAMPLEACCESSKEY"
EXPECTED_SK = "7QQT6IOQN2ZN563CWGNPM7QF2F7DIYM6KLVE7C5Y"


class TestPasswords:
    @pytest.mark.parametrize(
        "password", ["correct horse battery staple", "", "pässwörd-ünicode-密码", "a$b$c"]
    )
    def test_hash_round_trips(self, password: str) -> None:
        assert check_password(password, hash_password(password))

    @pytest.mark.parametrize(
        ("password", "attempt"),
        [
            ("correct horse", "correct horsE"),
            ("correct horse", "correct horse "),
            ("correct horse", ""),
            ("", "x"),
        ],
    )
    def test_wrong_password_is_refused(self, password: str, attempt: str) -> None:
        assert not check_password(attempt, hash_password(password))

    def test_hashes_are_salted(self) -> None:
        first, second = hash_password("same password"), hash_password("same password")

        assert first != second
        assert check_password("same password", first)
        assert check_password("same password", second)

    def test_hash_does_not_contain_the_password(self) -> None:
        stored = hash_password("hunter2hunter2")

        assert "hunter2" not in stored
        assert stored.startswith("scrypt$")
        assert len(stored.split("$")) == 3

    @pytest.mark.parametrize(
        "stored",
        [
            "",
            "garbage",
            "scrypt$onlytwo",
            "scrypt$a$b$c",
            "bcrypt$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
            "scrypt$$",
        ],
        ids=[
            "empty",
            "no separators",
            "too few parts",
            "too many parts",
            "other scheme",
            "empty parts",
        ],
    )
    def test_malformed_stored_hash_is_refused(self, stored: str) -> None:
        assert check_password("password", stored) is False

    @pytest.mark.parametrize(
        "stored",
        ["scrypt$abc$abc", "scrypt$a$b", "scrypt$AAAAAAAAAAAAAAAAAAAAAA==$not*base64"],
        ids=["bad padding", "truncated base64", "bad digest"],
    )
    def test_stored_hash_with_invalid_base64_is_refused(self, stored: str) -> None:
        assert check_password("password", stored) is False


class TestTokens:
    def test_digest_is_64_hex_characters(self) -> None:
        assert re.fullmatch(r"[0-9a-f]{64}", token_digest(mint_token()))

    def test_digest_is_sha256_of_the_token(self) -> None:
        # SHA-256("abc"), the FIPS 180-2 test vector.
        assert token_digest("abc") == (
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )

    def test_digest_is_stable(self) -> None:
        token = mint_token()

        assert token_digest(token) == token_digest(token)

    def test_different_tokens_have_different_digests(self) -> None:
        assert token_digest("token-a") != token_digest("token-b")

    def test_minted_tokens_are_random_and_url_safe(self) -> None:
        tokens = {mint_token() for _ in range(20)}

        assert len(tokens) == 20
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{64}", token) for token in tokens)


class TestSecretKeys:
    def test_derivation_is_deterministic(self) -> None:
        assert derive_secret_key(MASTER, AK) == derive_secret_key(MASTER, AK)

    def test_known_value(self) -> None:
        # base32(HMAC-SHA256(b"master-secret-for-tests", b"stageline-sk:HPUAEXAMPLEACCESSKEY"))[:40]
        assert derive_secret_key(MASTER, AK) == EXPECTED_SK

    @pytest.mark.parametrize(
        ("master", "access_key"),
        [(MASTER, "HPUAEXAMPLEACCESSKEZ"), (b"another-master-secret", AK), (MASTER, "")],
        ids=["other ak", "other master", "empty ak"],
    )
    def test_differs_when_master_or_access_key_differs(
        self, master: bytes, access_key: str
    ) -> None:
        assert derive_secret_key(master, access_key) != derive_secret_key(MASTER, AK)

    @pytest.mark.parametrize("access_key", [AK, "A", "X" * 200])
    def test_secret_key_is_40_base32_characters(self, access_key: str) -> None:
        assert re.fullmatch(r"[A-Z2-7]{40}", derive_secret_key(MASTER, access_key))


class TestAccessKeys:
    def test_access_key_is_20_uppercase_alphanumerics(self) -> None:
        for _ in range(50):
            assert re.fullmatch(r"[A-Z0-9]{20}", new_access_key())

    def test_access_keys_are_random(self) -> None:
        keys = {new_access_key() for _ in range(100)}

        assert len(keys) == 100

    def test_access_keys_use_letters_and_digits(self) -> None:
        alphabet = set("".join(new_access_key() for _ in range(200)))

        assert alphabet & set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        assert alphabet & set("0123456789")
