"""The one check of an http(s) URL the pipeline sends to, shared by the settings and the
routing rules' supervisors' hooks.

Why one check, and why this strict: a URL that passes configuration and then cannot be sent
to fails only when an alert goes out, at the worst moment and for every alert. Checking the
prefix only (the routing loader) or the parts only (the settings) let through a host with a
space (``http://exa mple.ru/``) and a host with an empty or over-long label
(``https://hooks..example.ru/``): aiohttp passes the latter on, and the IDNA encoding in
``getaddrinfo`` raises ``UnicodeError`` when the first alert is sent. The host is therefore
IDNA-encoded here as the resolver will (IP literals aside).

Problems are short phrases naming the part at fault (the host, the scheme), never the whole
URL: a hook URL may carry a secret in its path, query or user part, and the phrase ends up in
an error message or a log.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["http_url_problem", "redacted_url"]

#: Longest DNS name in its textual form, without the trailing dot (RFC 1035 §2.3.4: 255 octets
#: on the wire).
_MAX_DNS_NAME = 253


def http_url_problem(value: str, *, base: bool = False) -> str:
    """What is wrong with ``value`` as an http(s) URL to send to ("" for nothing).

    ``base``: a base URL, to which paths are added (no query or fragment).
    """
    if not value:
        return "empty"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "contains whitespace or a control character"
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # "Invalid IPv6 URL" (an unclosed bracket)
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "scheme is not http or https"
    host = parts.hostname
    if not host:
        return "no host"
    try:
        _ = parts.port
    except ValueError:
        return "bad port"
    problem = _host_problem(host)
    if problem:
        return problem
    if base and (parts.query or parts.fragment):
        return "a base URL takes no query or fragment"
    return ""


def _host_problem(host: str) -> str:
    """Why ``host`` (as :func:`urllib.parse.urlsplit` gives it) cannot be resolved by name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return ""  # an IP literal: nothing to encode
    shown = host[:80]
    try:
        name = host.encode("idna")
    except UnicodeError:
        return (f"host {shown!r} is no DNS name: an empty label, one over 63 characters, "
                "or characters IDNA cannot encode")
    if len(name.removesuffix(b".")) > _MAX_DNS_NAME:
        return f"host {shown!r} is longer than {_MAX_DNS_NAME} characters"
    return ""


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for a log line or message naming it.

    Why: a Redis URL carries its password (``redis://:secret@host``, ``redis://user:secret@host``,
    ``rediss://...``, or redis-py's ``?password=secret``), and the address is exactly what an
    operator needs to see when it cannot be reached. User-info without a colon is taken for a
    password too (``redis://secret@host`` is a common slip, and redis-py sends it to AUTH), and
    a URL that cannot be parsed keeps only its scheme.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a malformed port; the netloc may hold a password)
    except ValueError:
        scheme, sep, _ = url.partition("://")
        return f"{scheme}://***" if sep else "***"
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if colon else f"***@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs],
                              safe="*")
    # By hand: urlunsplit drops the empty authority of unix:///path.
    return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))
