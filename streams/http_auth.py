"""Bearer tokens for the project's HTTP servers (the intake gateway's clients, the read API).

One reading of the header and one comparison, so the two servers cannot drift apart on case,
whitespace or timing: every configured token is compared, each in constant time
(:func:`hmac.compare_digest`), with no early exit, so neither the answer's timing nor the
order of the tokens tells how much of a guess was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case, the token
    stripped), or None when the header is missing, of another scheme, or names no token."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def match_token(token: str, known: Iterable[tuple[bytes, T]]) -> T | None:
    """What ``known`` pairs with ``token`` (the first match), or None; see the module."""
    given = token.encode("utf-8", "surrogateescape")
    found: T | None = None
    for expected, value in known:
        if hmac.compare_digest(given, expected) and found is None:
            found = value
    return found
