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


@pytest.mark.parametrize("depth", [MAX_COMMENT_DEPTH + 1, 100])
def test_an_address_inside_the_comments_is_never_the_sender(depth: int) -> None:
    """Comment text is no address (RFC 5322 3.2.2): one level more of nesting turned
    ``good@y.ru`` into the commented ``evil@x.ru`` (review of 7c535e6)."""
    comment = "(" * depth + "<evil@x.ru>" + ")" * depth
    assert split_mailbox("Иван <good@y.ru> " + comment)[1] == "good@y.ru"
    assert split_mailbox(comment + " Иван <good@y.ru>")[1] == "good@y.ru"
    with pytest.raises(UnreadableMailbox):
        split_mailbox(comment + " good@y.ru")  # no angle address outside them: unreadable
