"""The link in an alert opens the appeal whatever its id: the API reads ids such as
``ПОС-2026/000123`` only percent-encoded as one path segment, and the link carried them raw
(404, or a URL with spaces)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest

from workers.notify.delivery import appeal_url


@pytest.mark.parametrize("appeal_id", ["ПОС-2026/000123", "59fz 2026 17", "%41?#&=+",
                                       "a1b2c3d4e5f6a7b8c9d0e1f2"])
def test_the_link_names_the_appeal_in_one_segment(appeal_id: str) -> None:
    url = appeal_url("https://appeals.example.ru/", appeal_id)
    parts = urlsplit(url)
    assert parts.query == "" and parts.fragment == "" and " " not in url
    head, _, segment = parts.path.rpartition("/")
    assert head == "/v1/appeals" and unquote(segment) == appeal_id
