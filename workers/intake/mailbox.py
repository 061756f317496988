"""Reading an e-mail address out of a header as mail gateways render it.

Shared by the e-mail adapter (the ``From:`` header) and the normaliser (an ``author.email``
given as ``Name <addr>``), so both take the same address from the same text.

Why not :func:`email.utils.parseaddr` alone: Outlook and Exchange write ``Фамилия, Имя
<addr>`` without quotes, and ``parseaddr`` splits that at the comma and returns ``Фамилия`` as
the address. The adapter then stored a word of the sender's name as ``author.email`` (where
the answer goes, and an identity of near-duplicate detection) and lost the address. Here an
address counts only when it has an ``@``: ``parseaddr``'s when it does, else the last
``<...@...>`` of the text, else none. The raw text never becomes the address.

``parseaddr`` reads comments ``(...)`` recursively: a few hundred nested ``(`` end in
``RecursionError``. That is reported as :class:`UnreadableMailbox`, so a caller refuses it
with a reason code instead of failing with an internal error. Comments nested deeper than
:data:`MAX_COMMENT_DEPTH` are not given to ``parseaddr`` at all: the header's last angle
address is taken, and without one it is refused the same way (Python 3.13's stricter
``parseaddr`` returns ``('', '')`` for them instead of raising, and the same header was refused
on 3.11 and taken as a mail without a sender on 3.13).
"""

from __future__ import annotations

import re
from email.utils import parseaddr

__all__ = ["MAX_HEADER_LENGTH", "UnreadableMailbox", "addresses", "split_mailbox"]

#: RFC 5322 2.1.1: a line of a message is at most 998 characters.
MAX_HEADER_LENGTH = 998
#: Comments ``(...)`` nested deeper than this make a header unreadable: no mail client nests
#: them at all, beyond a comment inside a display name.
MAX_COMMENT_DEPTH = 32

# The last ``<local@domain>`` of a header: the angle address of its (last) mailbox.
_ANGLE_ADDR = re.compile(r"<\s*([^<>\s@]+@[^<>\s@]+)\s*>")
# An address anywhere in a recipients header (``a@x, Имя <b@y>``).
_ADDR_SPEC = re.compile(r"[^\s<>,;:\"()\[\]]+@[^\s<>,;:\"()\[\]]+")


class UnreadableMailbox(ValueError):
    """The header's comments nest too deeply for :func:`email.utils.parseaddr`."""


def split_mailbox(text: str) -> tuple[str | None, str | None]:
    """``(display name, address)`` of a ``From:``-like header; ``None`` for what it lacks.

    The address always holds an ``@`` (see the module docstring). The display name is
    ``parseaddr``'s when it read the address, else the text before the angle address
    (``Петров, Иван``, quotes removed). With no address at all, ``parseaddr``'s name, else
    the whole text when it holds no ``@ < > ( )``: a gateway that renders ``From: Иван
    Иванов`` has only a name to give.
    """
    depth, outside = _comments(text)
    if depth > MAX_COMMENT_DEPTH:
        # Not given to parseaddr; an angle address outside the comments is still the
        # mailbox's (the junk before it is no name). Comment text is never an address (RFC
        # 5322 3.2.2): «(((<evil@x.ru>))) good@y.ru» must not become evil@x.ru.
        angle = next(reversed(list(_ANGLE_ADDR.finditer(outside))), None)
        if angle is None:
            raise UnreadableMailbox(f"comments nested deeper than {MAX_COMMENT_DEPTH}")
        return None, angle.group(1)
    try:
        name, address = parseaddr(text)
    except RecursionError:
        raise UnreadableMailbox("comments nested too deeply") from None
    if "@" in address:
        return name.strip() or None, address
    angle = next(reversed(list(_ANGLE_ADDR.finditer(text))), None)
    if angle is not None:
        return _unquote(text[:angle.start()]), angle.group(1)
    if name.strip():
        return name.strip(), None
    # No name either: the text is the name, unless it is a broken address or comment.
    return (None if any(c in text for c in "@<>()") else _unquote(text)), None


def _comments(text: str) -> tuple[int, str]:
    """How deep comments nest in ``text``, and ``text`` with every closed comment
    (parentheses and their content, nested) replaced by spaces, the same length (RFC 5322
    3.2.2: ``(`` outside a quoted string opens one, a backslash escapes the next character).
    A ``(`` never closed is left as text: ``((((<a@b.ru>`` still names its address."""
    out = list(text)
    opened: list[int] = []
    deepest = 0
    quoted = escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif ch == '"' and not opened:
            quoted = True
        elif ch == "(":
            opened.append(i)
            deepest = max(deepest, len(opened))
        elif ch == ")" and opened:
            start = opened.pop()
            if not opened:
                out[start:i + 1] = " " * (i + 1 - start)
    return deepest, "".join(out)


def addresses(text: str) -> list[str]:
    """Every address of a recipients header, lower-cased, sorted and without repeats."""
    return sorted({found.lower() for found in _ADDR_SPEC.findall(text)})


def _unquote(text: str) -> str | None:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text or None
