"""Secret variable values at rest: sealed with AES-256-GCM under a key derived from the master
secret, opened only where a step needs them.

A sealed value is text, so it lives in the same JSON column as a value in clear:

    stageline-sealed:v1:<key id>:<base64url(12-byte nonce + ciphertext + tag)>

The key is HKDF-SHA256 of the master secret with a label of its own, so it is independent of
the SKs derived from the same secret. The key ID (the first 8 hex digits of an HMAC of a fixed
label under the key) tells which master secret sealed a value: `stageline admin rotate-secrets`
re-seals the values of an old one. The prefix and key ID are authenticated with the ciphertext.

A value without the prefix was stored in clear by an earlier version: `open` returns it as it
is, so such rows keep working until they are sealed (when next written, or by the command).
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "stageline-sealed:v1:"
_KEY_LABEL = b"stageline secret variables v1"
_KEY_ID_LABEL = b"stageline secret variables key id"
_NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A sealed value that no key of this vault opens: the master secret changed without
    `stageline admin rotate-secrets`, or the stored value was altered. An operator's problem,
    never a client's, so it is not a DomainError (the API answers 500 and logs it)."""


def _derive(master_secret: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_LABEL)
    return hkdf.derive(master_secret)


def _key_id(key: bytes) -> str:
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:8]


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


class Vault:
    """Seals under the current master secret; opens under it or any of `previous`."""

    def __init__(self, master_secret: bytes, *, previous: Sequence[bytes] = ()) -> None:
        current = _derive(master_secret)
        self.key_id = _key_id(current)
        self._ciphers = {self.key_id: AESGCM(current)}
        for old_secret in previous:
            old = _derive(old_secret)
            self._ciphers.setdefault(_key_id(old), AESGCM(old))

    def seal(self, plaintext: str) -> str:
        header = f"{PREFIX}{self.key_id}:"
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._ciphers[self.key_id].encrypt(nonce, plaintext.encode(), header.encode())
        return header + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str) -> str:
        """The plaintext of a sealed value; a value stored in clear comes back unchanged."""
        if not is_sealed(stored):
            return stored
        key_id, separator, payload = stored.removeprefix(PREFIX).partition(":")
        cipher = self._ciphers.get(key_id)
        if not separator or cipher is None:
            raise SecretUnreadable(
                f"a secret value was sealed under another master secret (key id {key_id[:8]!r});"
                " run `stageline admin rotate-secrets` with the old one"
            )
        try:
            raw = base64.urlsafe_b64decode(payload.encode())
            header = f"{PREFIX}{key_id}:".encode()
            opened = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], header)
        except (InvalidTag, ValueError, binascii.Error):
            raise SecretUnreadable(
                "a sealed secret value is damaged and cannot be opened"
            ) from None
        return opened.decode()

    def is_current(self, stored: str) -> bool:
        """Sealed under the current master secret (nothing to re-seal)."""
        return stored.startswith(f"{PREFIX}{self.key_id}:")

    def reseal(self, stored: str) -> str:
        """`stored` sealed under the current master secret: in clear or under an old one, it is
        opened and sealed again; already current, it is returned unchanged."""
        return stored if self.is_current(stored) else self.seal(self.open(stored))
