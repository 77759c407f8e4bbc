"""Password hashing with scrypt (Python's hashlib, OpenSSL): memory-hard, salted, no extra
dependency. Stored as `scrypt$<n>$<r>$<p>$<salt>$<hash>` so the cost can rise later and
old hashes still verify."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 1  # about 16 MiB and 30-60 ms per hash on this machine's cores


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(_derive(password, salt, N, R, P))}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(derived, base64.b64decode(expected))


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def password_matches_async(password: str, stored: str) -> bool:
    """Off the event loop: a hash costs tens of milliseconds."""
    return await asyncio.to_thread(password_matches, password, stored)
