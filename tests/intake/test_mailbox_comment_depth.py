"""Deeply nested comments in a From: header are refused on every Python.

Python 3.11's ``parseaddr`` raised RecursionError on a few hundred nested ``(`` (refused as
unreadable); 3.13's stricter one returns ``('', '')``, and the same mail was taken without a
sender there (the adapter test's nested-600 case failed on 3.13 only).
"""

from __future__ import annotations

import pytest

from workers.intake.mailbox import MAX_COMMENT_DEPTH, UnreadableMailbox, split_mailbox


@pytest.mark.parametrize("depth", [MAX_COMMENT_DEPTH + 1, 600])
def test_comments_nested_too_deeply_are_unreadable(depth: int) -> None:
    with pytest.raises(UnreadableMailbox):
        split_mailbox("(" * depth + "a@b.ru")
    with pytest.raises(UnreadableMailbox):
        split_mailbox("Иван " + "(x " * depth + ")" * depth + " ivan@example.ru")
    # An angle address after them is still the mailbox's; the junk before it is no name.
    assert split_mailbox("(" * depth + "<a@b.ru>") == (None, "a@b.ru")


def test_ordinary_comments_quotes_and_escapes_are_read() -> None:
    assert split_mailbox("Иван (ЖКХ (отдел)) <ivan@example.ru>")[1] == "ivan@example.ru"
    # Parentheses inside a quoted name or escaped are no comments.
    deep_quoted = '"' + "(" * 100 + '" <a@b.ru>'
    assert split_mailbox(deep_quoted)[1] == "a@b.ru"
    escaped = "Иван " + "\\(" * 100 + " <a@b.ru>"
    assert split_mailbox(escaped)[1] == "a@b.ru"
    nested = "(" * MAX_COMMENT_DEPTH + "x" + ")" * MAX_COMMENT_DEPTH + " a@b.ru"
    assert split_mailbox(nested)[1] == "a@b.ru"
