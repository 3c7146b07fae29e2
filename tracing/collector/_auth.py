"""Keys and browser sessions.

A key is shown as ``Authorization: Bearer <key>`` and compared in constant time with
every configured key. A person signs in once through a form; the cookie it sets is not
the key but ``<expiry>.<session id>.<HMAC-SHA256(key, expiry.session id)>``, so it
reveals nothing about the key, expires on its own, survives a collector restart, works on
every replica with the same keys, and dies when its key is removed. Signing out records
the session id as revoked in the store, which every replica sharing the database reads.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable

import attrs

__all__ = ["COOKIE", "HTTP_WHITESPACE", "SESSION_SECONDS", "Keys", "Session"]

COOKIE = "tracing_session"
SESSION_SECONDS = 12 * 3600
_CONTEXT = b"tracing-collector-session-v2:"
HTTP_WHITESPACE = " \t"


@attrs.frozen
class Session:
    """A valid session cookie's id (what sign-out revokes) and expiry (Unix seconds)."""

    id: str
    expires: int


class Keys:
    """The collector's keys; with none, every request is allowed."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = [k.encode() for k in dict.fromkeys(keys) if k]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<Keys count={len(self._keys)}>"  # never the keys themselves

    def check(self, presented: str | None) -> bool:
        """True when ``presented`` is one of the keys (constant time per key)."""
        if presented is None:
            return False
        candidate = presented.encode("utf-8", "surrogatepass")
        found = False
        for key in self._keys:
            # No early exit: the time taken does not say which key matched.
            found |= hmac.compare_digest(candidate, key)
        return found

    def check_header(self, authorization: str | None) -> bool:
        """True for ``Bearer <one of the keys>``."""
        if authorization is None:
            return False
        scheme, _, credentials = authorization.partition(" ")
        # Only HTTP's own optional whitespace (RFC 9110 OWS: space and tab) is removed;
        # str.strip() would also take NBSP, U+3000, U+2028, \x1c-\x1f, \x85 and more.
        bearer = scheme.isascii() and scheme.lower() == "bearer"
        return bearer and self.check(credentials.strip(HTTP_WHITESPACE))

    def session_for(self, key: str, now: float | None = None) -> str:
        """A new session token for a person who showed ``key`` (call after ``check``)."""
        expiry = int(now if now is not None else time.time()) + SESSION_SECONDS
        payload = f"{expiry}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{_mac(key.encode(), payload)}"

    def check_session(self, token: str | None, now: float | None = None) -> Session | None:
        """The session of an unexpired token made by ``session_for`` with a current
        key; None otherwise. (Whether it was revoked is the store's to say.)"""
        if not token or len(token) > 200:
            return None
        payload, _, mac = token.rpartition(".")
        expiry_text, _, session_id = payload.partition(".")
        # isascii(): str.isdigit() also takes other scripts' digits, which int() reads.
        if not (expiry_text.isascii() and expiry_text.isdigit()) or len(expiry_text) > 12:
            return None
        if not session_id or int(expiry_text) < (now if now is not None else time.time()):
            return None
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(
                mac.encode("utf-8", "surrogatepass"), _mac(key, payload).encode()
            )
        return Session(session_id, int(expiry_text)) if found else None


def _mac(key: bytes, payload: str) -> str:
    data = _CONTEXT + payload.encode("utf-8", "surrogatepass")
    return hmac.new(key, data, hashlib.sha256).hexdigest()
