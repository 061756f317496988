"""Keep message bodies out of the logs whatever ``APPEALS_LOG_LEVEL`` says.

Why: appeals carry names, addresses and phones, and at DEBUG the Kafka clients and Faust log
every message they send (aiokafka "Sending (key=... value=...)", kafka-python the same, Faust's
aiokafka driver and its topics "send: topic=... k=... v=..." for every table changelog write,
which for the triage table is the appeal's text and address). These loggers are capped at
INFO; everything else still logs at the level asked for.
"""

from __future__ import annotations

import logging

__all__ = ["PAYLOAD_LOGGERS", "quiet_payload_loggers"]

PAYLOAD_LOGGERS = (
    "aiokafka.producer.producer",
    "kafka.producer.kafka",
    "faust.transport.drivers.aiokafka",
    "faust.topics",  # the same "send: topic=... v=..." line, for sends through a Faust topic
    "faust.agents.agent",  # "<agent> yielded: <value>"
)


class _BelowInfo(logging.Filter):
    """Drops records below INFO: unlike a level, it holds when logging is configured again or
    a parent's level changes later (the CLI sets ``faust.transport`` to WARNING, Faust's worker
    then configures the root at the asked level)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO


_FILTER = _BelowInfo()


def quiet_payload_loggers() -> None:
    """Keep every logger in ``PAYLOAD_LOGGERS`` from emitting below INFO. Idempotent; the worker
    calls it after Faust has configured logging, the gateway and producer when they start."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        if logger.level < logging.INFO:  # NOTSET included: no DEBUG message building at all
            logger.setLevel(logging.INFO)
