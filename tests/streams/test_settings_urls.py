"""APPEALS_KAFKA and APPEALS_REDIS are checked host by host, not only by their prefix.

``kafka://`` (no host) made a worker wait 30 s for a broker, ``kafka://127.0.0.1:notaport``
ended in a kafka-python traceback that did not name the variable, and ``redis://h:x/0`` failed
at the first Redis call."""

from __future__ import annotations

import pytest

from streams.settings import ConfigError, Settings


@pytest.mark.parametrize(("raw", "problem"), [
    ("kafka://", "no host"),
    ("kafka://127.0.0.1:notaport", "'127.0.0.1:notaport': the port must be a number 1..65535"),
    ("kafka://127.0.0.1:", "'127.0.0.1:': the port must be a number 1..65535"),
    ("kafka://h:0", "'h:0': the port must be a number 1..65535"),
    ("kafka://h:65536", "'h:65536': the port must be a number 1..65535"),
    ("kafka://:9092", "':9092' has no host"),
    ("kafka://a:9092;", "no host"),
    ("kafka:// 127.0.0.1:9092", "' 127.0.0.1:9092' contains whitespace"),
    ("kafka://a:9092;kafka://b:9092",
     "'kafka://b:9092': one kafka:// before the whole list, not one per broker"),
    ("kafka://a:9092/", "'a:9092/' is not host:port"),
])
def test_a_broker_list_the_clients_cannot_use_is_refused(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.load({"APPEALS_KAFKA": raw})
    assert str(exc.value) == ("APPEALS_KAFKA must look like kafka://host:port[;host:port] "
                              f"({problem})")


@pytest.mark.parametrize(("raw", "bootstrap"), [
    ("kafka://127.0.0.1:9092", "127.0.0.1:9092"),
    ("kafka://kafka-1:9092;kafka-2:9092;kafka-3:9092", "kafka-1:9092,kafka-2:9092,kafka-3:9092"),
    ("kafka://a:1,b:65535", "a:1,b:65535"),
    ("kafka://broker", "broker"),  # the clients' default port, 9092
    ("kafka://[::1]:9092", "[::1]:9092"),
    ("aiokafka://h:9092", "h:9092"),
])
def test_broker_lists_the_clients_take_are_accepted(raw: str, bootstrap: str) -> None:
    assert Settings.load({"APPEALS_KAFKA": raw}).kafka_bootstrap == bootstrap


def test_a_missing_scheme_keeps_its_message() -> None:
    with pytest.raises(ConfigError, match=r"^APPEALS_KAFKA must look like kafka://host:port$"):
        Settings.load({"APPEALS_KAFKA": "localhost:9092"})


@pytest.mark.parametrize(("raw", "problem"), [
    ("redis://h:x/0", "'h:x': the port must be a number 1..65535"),
    ("redis://", "no host"),
    ("redis://h:70000/0", "'h:70000': the port must be a number 1..65535"),
    ("redis://h/zero", "the database 'zero' must be a number"),
    ("unix://", "no socket path"),
])
def test_a_redis_url_the_client_cannot_use_is_refused(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.load({"APPEALS_REDIS": raw})
    assert str(exc.value) == f"APPEALS_REDIS must look like redis://host:port/db ({problem})"


def test_the_message_never_shows_a_redis_password() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.load({"APPEALS_REDIS": "redis://user:s3cret@h:x/0"})
    assert "s3cret" not in str(exc.value) and "'h:x'" in str(exc.value)


@pytest.mark.parametrize("raw", [
    "redis://127.0.0.1:6379/0", "redis://:pw@h:1/2", "rediss://u:p@h/3?ssl_cert_reqs=none",
    "redis://h", "redis://[::1]:6379", "unix:///run/redis.sock",
])
def test_redis_urls_the_client_takes_are_accepted(raw: str) -> None:
    assert Settings.load({"APPEALS_REDIS": raw}).redis == raw


@pytest.mark.parametrize(("name", "value"), [
    ("APPEALS_KAFKA", "kafka://[::1:9092"),
    ("APPEALS_REDIS", "redis://:s3cret@[::1:6379/0"),
])
def test_an_unclosed_ipv6_bracket_is_a_config_error(name: str, value: str) -> None:
    """urlsplit raised a bare ValueError ("Invalid IPv6 URL"): a traceback not naming the
    variable, where every other bad value is one line that does."""
    with pytest.raises(ConfigError) as exc:
        Settings.load({name: value})
    message = str(exc.value)
    assert name in message and "\n" not in message and "s3cret" not in message
