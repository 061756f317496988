"""The URL check shared by the settings and the routing rules' hooks (streams/urls.py)."""

from __future__ import annotations

import pytest

from streams.urls import http_url_problem


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "empty"),
        ("http://exa mple.ru/", "contains whitespace"),
        ("http://example.ru/\x00", "a control character"),
        ("ftp://example.ru/", "scheme is not http or https"),
        ("http://", "no host"),
        ("http://[::1/x", "not a URL: Invalid IPv6 URL"),
        ("http://example.ru:99999/", "bad port"),
        # What aiohttp lets through and getaddrinfo's IDNA encoding refuses (UnicodeError).
        ("https://hooks..example.ru/x", "host 'hooks..example.ru' is no DNS name"),
        ("https://.example.ru/x", "host '.example.ru' is no DNS name"),
        (f"https://{'a' * 64}.ru/x", "is no DNS name"),
        ("https://exääämple..ru/x", "is no DNS name"),
        ("https://" + ".".join(["a" * 63] * 4) + "/x", "is longer than 253 characters"),
    ],
)
def test_urls_that_cannot_be_sent_to(url: str, expected: str) -> None:
    assert expected in http_url_problem(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://alertmanager:9093",
        "https://hooks.example.invalid/22/cur?token=x",
        "https://хуки.пример.рф/x",
        "http://[::1]:8080/x",
        "http://127.0.0.1:1/x",
        "https://hooks.example.ru./x",  # a fully qualified name
        "http://notify_gateway:8080/x",  # an underscore: compose service names may have one
        "https://" + ".".join(["a" * 63] * 3 + ["a" * 61]) + "/x",  # 253 characters
    ],
)
def test_urls_that_can_be_sent_to(url: str) -> None:
    assert http_url_problem(url) == ""


def test_a_base_url_takes_no_query_or_fragment() -> None:
    assert http_url_problem("http://am:9093/?x=1", base=True) == (
        "a base URL takes no query or fragment")
    assert http_url_problem("http://am:9093/?x=1") == ""


def test_the_problem_names_the_host_never_the_rest_of_the_url() -> None:
    problem = http_url_problem("https://user:s3cret@hooks..example.ru/T0KEN?k=v")
    assert "hooks..example.ru" in problem
    assert not any(part in problem for part in ("s3cret", "T0KEN", "k=v"))
