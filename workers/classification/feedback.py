"""Turn human triage decisions into training-corpus lines (``classify export-feedback``).

A triage decision is the best label we will ever get for a hard appeal, so it goes back into
the corpus. The triage agent (``workers/route/agent.py``) publishes every decision it routes an
appeal on to ``appeals.triage.feedback`` (``TriageFeedback`` v1, keyed by ``appeal_id``: the
appeal's text, the decided category and urgency: the decision's flag, or the classifier's
when it left it null, never the intake importance, which is not in the text);
:func:`export_feedback_from_kafka` reads that topic from its beginning to its end as of the
start of the read (no consumer group, nothing committed). :func:`export_feedback` reads the
same fields from a JSONL file instead. Either way the label is the decision's:

- The same appeal can be triaged twice, and a replayed batch can publish its decision twice;
  the *first* decision for an ``appeal_id`` wins, as in the triage agent, which routes on the
  first decision and ignores later ones. Lines are taken to be in decision order (on the topic
  all of an appeal's records share one partition, read in offset order).
- ``urgent`` is parsed like the labelled files (``true``/``false``, also as strings or 0/1). A
  null or missing ``urgent`` means "keep the classifier's flag" to the agent, and that flag is
  not in a file, so such a line is refused rather than guessed. (Topic records carry the flag
  the agent resolved: the decision's or the classifier's.)
- Identical texts (whitespace normalised) are exported once; when their labels disagree, none
  of them is exported, and the count is reported on stderr.

A file line that breaks these rules stops the export with its line number, because silently
dropping a human decision hides bugs. A topic record that breaks its schema cannot be fixed by
rewriting the topic, so it is left out and reported on stderr with its position instead of
blocking every later export. Appeal texts are never printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from .dataio import DataError, _parse_bool
from .lexicons import CATEGORIES

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = ["KafkaUnavailable", "export_feedback", "export_feedback_from_kafka"]

#: Seconds without any fetched record before a read of the topic is given up as stalled.
STALL_TIMEOUT = 60.0


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached or did not answer; the message is one line."""


def _text_key(text: str) -> str:
    return " ".join(text.split())


def export_feedback(src: Path, out: Path) -> int:
    """Read triage JSONL (``appeal_id``, ``text``, ``category``, ``urgent``) → corpus JSONL.

    Returns the number of lines written. Lines without text, with an unknown category or
    without a true/false ``urgent`` raise :class:`DataError` naming the line, because silently
    dropping a human decision hides bugs.
    """
    return _write_corpus(_file_decisions(Path(src)), Path(out))


def export_feedback_from_kafka(settings: Settings, out: Path, *, progress: IO[str] | None = None,
                               stall_timeout: float = STALL_TIMEOUT,
                               kafka_source: str = "APPEALS_KAFKA") -> int:
    """Read ``appeals.triage.feedback`` from its beginning to its current end → corpus JSONL.

    Returns the number of lines written. Raises :class:`KafkaUnavailable` when the broker
    cannot be reached, does not answer, or has no such topic. ``progress`` (stderr) gets a
    progress line while reading and a summary; ``None`` keeps it quiet. ``kafka_source`` names
    where the broker URL came from in error messages.
    """
    from schemas.records import TriageFeedback
    from schemas.validation import InvalidEvent, validate_incoming

    records, topic = asyncio.run(_read_topic(settings, progress, stall_timeout,
                                                kafka_source))
    decisions: list[tuple[str, dict[str, Any]]] = []
    invalid: list[str] = []
    for partition, offset, raw in records:
        where = f"{topic}[{partition}]@{offset}"
        try:
            obj = orjson.loads(raw) if raw else None
            if not isinstance(obj, dict):
                raise InvalidEvent("not_object", "not a JSON object")
            validate_incoming(TriageFeedback.schema, obj)
        except (orjson.JSONDecodeError, InvalidEvent) as exc:
            reason = exc.reason if isinstance(exc, InvalidEvent) else "not_json"
            invalid.append(f"{where} ({reason})")
            continue
        decisions.append((where, obj))
    if invalid:
        print(f"export-feedback: left out {len(invalid)} records that break "
              f"{TriageFeedback.schema}.v1: {', '.join(invalid[:5])}"
              + (", ..." if len(invalid) > 5 else ""), file=sys.stderr)
    return _write_corpus(decisions, Path(out), strict=False)


def _file_decisions(src: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for n, raw in enumerate(src.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise DataError(f"{src}:{n}: invalid JSON ({e})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{src}:{n}: expected a JSON object")
        yield f"{src}:{n}", obj


def _problem(obj: dict[str, Any]) -> str | None:
    """Why a decision cannot be a training line, or None."""
    aid, text, cat = obj.get("appeal_id"), obj.get("text"), obj.get("category")
    if aid is None or not isinstance(text, str) or not text.strip():
        return "needs 'appeal_id' and non-empty 'text'"
    if cat not in CATEGORIES:
        return f"unknown category {cat!r}"
    if obj.get("urgent") is None:
        return ("'urgent' is missing or null (the classifier's flag, which this file does not "
                "carry); write the urgency the appeal was routed with")
    if _parse_bool(obj["urgent"]) is None:
        return "'urgent' must be true or false"
    return None


def _write_corpus(decisions: Iterable[tuple[str, dict[str, Any]]], out: Path, *,
                  strict: bool = True) -> int:
    """The export rules (first decision per appeal, urgency parsed, identical texts once,
    disagreeing texts left out) over ``(where, decision)`` in decision order.

    ``strict`` (a file the operator gave): a decision that breaks them is an error naming its
    line. Not strict (the topic): it is left out and reported. The topic keeps a year of
    records and cannot be corrected, so one record with a text of spaces (the schema lets it
    through) blocked every export for that year (review of session 15).
    """
    first: dict[str, dict[str, object]] = {}
    unusable: list[str] = []
    for where, obj in decisions:
        problem = _problem(obj)
        if problem is not None:
            if strict:
                raise DataError(f"{where}: {problem}")
            unusable.append(f"{where} ({problem.split(' (')[0]})")
            continue
        aid, text, cat = obj["appeal_id"], obj["text"], obj["category"]
        urgent = _parse_bool(obj["urgent"])
        key = str(aid)
        if key in first:
            continue  # a later decision for the same appeal: the agent ignored it too
        first[key] = {"text": text, "category": cat, "urgent": urgent,
                      "style": "feedback", "appeal_id": key}

    if unusable:
        print(f"export-feedback: left out {len(unusable)} decisions that cannot be training "
              f"lines: {', '.join(unusable[:5])}" + (", ..." if len(unusable) > 5 else ""),
              file=sys.stderr)
    by_text: dict[str, list[dict[str, object]]] = {}
    for row in first.values():
        by_text.setdefault(_text_key(str(row["text"])), []).append(row)
    rows: list[dict[str, object]] = []
    conflicting = conflicting_lines = 0
    for same in by_text.values():
        if len({(r["category"], r["urgent"]) for r in same}) > 1:
            conflicting += 1
            conflicting_lines += len(same)
            continue
        rows.append(same[0])
    if conflicting:
        print(f"export-feedback: left out {conflicting} texts ({conflicting_lines} decisions) "
              "whose labels disagree", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
    return len(rows)


class _Progress:
    """``read N/M records`` on stderr: redrawn in place on a terminal (at most 10 times a
    second), otherwise a line every few seconds; only for reads that take a while."""

    def __init__(self, stream: IO[str] | None, total: int) -> None:
        self.stream = stream
        self.total = total
        self.tty = stream is not None and stream.isatty()
        self.start = self.last = time.monotonic()
        self.shown = False

    def update(self, done: int) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if now - self.start < 1.0 or now - self.last < (0.1 if self.tty else 5.0):
            return
        self.last = now
        self.shown = True
        line = f"export-feedback: read {done}/{self.total} records"
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def done(self, done: int, topic: str, partitions: int) -> None:
        if self.stream is None:
            return
        if self.shown and self.tty:
            self.stream.write("\n")
        self.stream.write(f"export-feedback: read {done} records from {topic} "
                          f"({partitions} partitions, {time.monotonic() - self.start:.1f} s)\n")
        self.stream.flush()


async def _read_topic(settings: Settings, progress: IO[str] | None, stall_timeout: float,
                      kafka_source: str) -> tuple[list[tuple[int, int, bytes | None]], str]:
    """Every record of the feedback topic below its end offsets as of the start, ordered by
    (partition, offset); no group, nothing committed."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    from streams import topics as t
    from streams.end_offsets import true_end_offsets

    topic = t.topic_name(settings, t.TRIAGE_FEEDBACK)
    where = f"{settings.kafka_bootstrap} ({kafka_source}={settings.kafka})"

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            client_id=f"{settings.app_id}-export-feedback", request_timeout_ms=30_000)

    reader = consumer()
    try:
        await reader.start()
    except (KafkaError, OSError) as exc:
        await _quiet_stop(reader)
        raise KafkaUnavailable(f"cannot reach Kafka at {where}: {_one_line(exc)}") from None
    try:
        try:
            partitions = sorted(reader.partitions_for_topic(topic) or ())
            if not partitions:
                await reader.topics()  # a full metadata refresh
                partitions = sorted(reader.partitions_for_topic(topic) or ())
            if not partitions:
                raise KafkaUnavailable(
                    f"no topic {topic} at {where}: it is created by `appeals topics create` "
                    "or a worker's start (check APPEALS_TOPIC_PREFIX)")
            tps = [TopicPartition(topic, p) for p in partitions]
            reader.assign(tps)
            begin = await reader.beginning_offsets(tps)
            # The embedded broker reports end offsets short; a fetch shows the true ones.
            end = await true_end_offsets(consumer(), await reader.end_offsets(tps))
        except (KafkaError, OSError, TimeoutError) as exc:
            raise KafkaUnavailable(f"Kafka at {where} did not answer: {_one_line(exc)}") from None
        todo = {tp for tp in tps if (end[tp] or 0) > begin[tp]}
        total = sum((end[tp] or 0) - begin[tp] for tp in todo)
        shown = _Progress(progress, total)
        for tp in todo:
            reader.seek(tp, begin[tp])
        by_partition: dict[int, list[tuple[int, int, bytes | None]]] = {p: [] for p in partitions}
        done = 0
        last_new = time.monotonic()
        while todo:
            try:
                fetched = await reader.getmany(*todo, timeout_ms=1000, max_records=5000)
            except (KafkaError, OSError) as exc:
                raise KafkaUnavailable(
                    f"Kafka at {where} failed during the read: {_one_line(exc)}") from None
            for tp, recs in fetched.items():
                for rec in recs:
                    if rec.offset < (end[tp] or 0):
                        by_partition[tp.partition].append((tp.partition, rec.offset, rec.value))
                        done += 1
                if recs:
                    last_new = time.monotonic()
            for tp in list(todo):
                if await reader.position(tp) >= (end[tp] or 0):
                    todo.discard(tp)
            shown.update(done)
            if todo and time.monotonic() - last_new > stall_timeout:
                raise KafkaUnavailable(
                    f"Kafka at {where}: no records for {stall_timeout:.0f} s with {total - done} "
                    f"of {total} still to read from {topic}")
        shown.done(done, topic, len(partitions))
        return [r for p in partitions for r in by_partition[p]], topic
    finally:
        await _quiet_stop(reader)


async def _quiet_stop(consumer: Any) -> None:
    """Close after a failure: the failure is what the operator needs to see."""
    with contextlib.suppress(Exception):
        await consumer.stop()


def _one_line(exc: BaseException) -> str:
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if not text or text == name:
        return name
    return text if text.startswith(name) else f"{name}: {text}"
