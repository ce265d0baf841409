"""Minting and checking secrets: passwords (scrypt), tokens (SHA-256 digests), access keys.

Nothing secret is stored in clear: passwords as salted scrypt hashes, tokens as digests, and SKs
not at all, since each is an HMAC of its AK under the installation's master secret.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
import string

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
AK_ALPHABET = string.ascii_uppercase + string.digits
AK_LENGTH = 20


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except (ValueError, binascii.Error):
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return hmac.compare_digest(digest, expected)


DUMMY_PASSWORD_HASH = hash_password(secrets.token_hex(8))
"""Checked against when the user does not exist, so both failures take the same time."""


def mint_token() -> str:
    return secrets.token_urlsafe(48)


def token_digest(token: str) -> str:
    """What the database keeps of a token; lookups by digest reveal nothing by their timing."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_access_key() -> str:
    return "".join(secrets.choice(AK_ALPHABET) for _ in range(AK_LENGTH))


def derive_secret_key(master_secret: bytes, access_key: str) -> str:
    """The SK of an AK: 40 characters, reproducible only with the master secret."""
    mac = hmac.new(master_secret, f"stageline-sk:{access_key}".encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()).decode()[:40]
