"""``recompute``: the engine transition, its agent-side application, and the CLI request.

The transition is tested with a deadline function we control (so "the calendar changed" is
one assignment) and with the real deadline service (so a recompute with unchanged files is a
no-op for every kind of history: extension, pause, redirect).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from workers.aggregates.partials import PartitionAggregates
from workers.deadlines import cli as deadlines_cli
from workers.deadlines.compute import default_calendar
from workers.sla import recompute as rc
from workers.sla import timers
from workers.sla.deadline_service import DeadlineService
from workers.sla.engine import (
    SlaRules,
    apply_lifecycle,
    apply_tick,
    keyed_contributions,
    new_state,
    recompute,
    replay_deadline,
)

DAY = 86400.0
T0 = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC).timestamp()  # a Monday, 10:00 Barnaul


@dataclass
class Period:
    """A deadline function whose period we change to simulate a calendar/policy change."""

    days: float = 10.0
    calls: list[float] = field(default_factory=list)

    def due(self, regime: str, start: float, *_: Any) -> float:
        self.calls.append(start)
        return start + self.days * DAY

    def extend(self, regime: str, due: float, days: int, *_: Any) -> float:
        return due + days * DAY


def _rules(period: Period) -> SlaRules:
    return SlaRules(due=period.due, extend=period.extend, warning_share=0.75,
                    escalation_after=2 * DAY)


def _routed(appeal_id: str = "ab" * 12, regime: str = "fz59") -> dict[str, Any]:
    return {"appeal_id": appeal_id, "regime": regime, "region": "22",
            "authority_id": "22-minzhkh", "parent_authority_id": "22-government",
            "category": "housing_utilities", "urgent": False}


def _event(state: dict[str, Any], n: int, kind: str, at: float, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{state['id']}:{n}", "appeal_id": state["id"], "event": kind,
            "at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(), **extra}


def test_unchanged_deadline_changes_nothing() -> None:
    period = Period()
    rules = _rules(period)
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", rules)
    before = json.dumps(state, sort_keys=True)
    effects = recompute(state, rules, now=T0 + DAY)
    assert effects.outcome == "unchanged"
    assert not effects.timers and not effects.cancel and effects.deadline is None
    assert json.dumps(state, sort_keys=True) == before


def test_moved_deadline_bumps_cycle_and_replaces_timers() -> None:
    period = Period()
    rules = _rules(period)
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", rules)
    period.days = 12  # e.g. two holidays were added by a new decree
    effects = recompute(state, rules, now=T0 + DAY)
    assert effects.outcome == "recomputed"
    assert effects.deadline == (T0 + 10 * DAY, T0 + 12 * DAY)
    assert state["cycle"] == 1 and state["due"] == T0 + 12 * DAY
    assert state["warn"] == T0 + 9 * DAY
    assert {(t.kind, t.cycle) for t in effects.cancel} >= {("warning", 0), ("breach", 0)}
    assert {(t.kind, t.due_ts, t.cycle) for t in effects.timers} == {
        ("warning", T0 + 9 * DAY, 1), ("breach", T0 + 12 * DAY, 1)}
    # Old ticks are stale now; the rebuild of the index agrees with the effects.
    assert apply_tick(state, "breach", 0, rules).outcome == "stale"
    assert {t.member for t in timers.pending_timers(state, rules.escalation_after)} == {
        t.member for t in effects.timers}
    # Idempotent: the same request again is a no-op.
    assert recompute(state, rules, now=T0 + DAY).outcome == "unchanged"


def test_breach_still_past_is_carried_not_sent_again() -> None:
    period = Period()
    rules = _rules(period)
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", rules)
    assert apply_tick(state, "warning", 0, rules).alerts
    assert apply_tick(state, "breach", 0, rules).alerts
    period.days = 10.5  # moved later, but still in the past at `now`
    effects = recompute(state, rules, now=T0 + 11 * DAY)
    assert effects.outcome == "recomputed" and not effects.alerts
    assert {"warning:1", "breach:1"} <= set(state["alerts"])
    assert state["breached"] == T0 + 10.5 * DAY
    assert [(t.kind, t.due_ts) for t in effects.timers] == [("escalation", T0 + 12.5 * DAY)]
    assert not apply_tick(state, "breach", 1, rules).alerts  # never twice
    assert [a.level for a in apply_tick(state, "escalation", 1, rules).alerts] == ["escalation"]


def test_an_escalation_sent_is_not_sent_again_when_the_breach_goes_on() -> None:
    """The deadline moves one day later, still past: the breach goes on, and its escalation,
    already sent, would fall a day ahead under the new deadline. It is not armed again."""
    period = Period()
    rules = _rules(period)
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", rules)
    apply_tick(state, "breach", 0, rules)
    assert [a.level for a in apply_tick(state, "escalation", 0, rules).alerts] == ["escalation"]
    escalated = state["escalated"]
    period.days = 11  # new breach moment T0+11d (past), new escalation moment T0+13d (ahead)
    effects = recompute(state, rules, now=T0 + 12.5 * DAY)
    assert effects.outcome == "recomputed" and not effects.alerts
    assert not [t for t in effects.timers if t.kind == "escalation"]
    assert {"breach:1", "escalation:1"} <= set(state["alerts"])
    assert state["escalated"] == escalated and state["breached"] == T0 + 11 * DAY
    assert not apply_tick(state, "escalation", 1, rules).alerts
    # The index rebuilt from the state arms nothing either.
    assert not [t for t in timers.pending_timers(state, rules.escalation_after)
                if t.kind == "escalation"]
    assert len(state["edays"]) == 1


def test_breach_cured_when_new_deadline_is_ahead() -> None:
    period = Period()
    rules = _rules(period)
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", rules)
    apply_tick(state, "breach", 0, rules)
    assert ("22-minzhkh", "", "open_overdue") in keyed_contributions(state)
    period.days = 15
    effects = recompute(state, rules, now=T0 + 11 * DAY)
    assert state["breached"] is None
    assert ("22-minzhkh", "", "open_overdue") not in keyed_contributions(state)
    assert len(state["bdays"]) == 1  # the breach stays in the history
    assert {t.kind for t in effects.timers} == {"warning", "breach"}


def test_paused_and_closed_appeals() -> None:
    period = Period()
    rules = _rules(period)
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", rules)
    apply_lifecycle(state, _event(state, 1, "paused", T0 + DAY), rules)
    period.days = 11
    effects = recompute(state, rules, now=T0 + 2 * DAY)
    assert effects.outcome == "recomputed" and not effects.timers  # no timers while paused
    apply_lifecycle(state, _event(state, 2, "resumed", T0 + 3 * DAY), rules)
    assert state["due"] == T0 + 13 * DAY  # new period + the 2-day pause
    apply_lifecycle(state, _event(state, 3, "answered", T0 + 4 * DAY), rules)
    period.days = 5
    assert recompute(state, rules, now=T0 + 5 * DAY).outcome == "not_open"


def test_replay_applies_extensions_and_pauses_in_order() -> None:
    period = Period()
    rules = _rules(period)
    state, _ = new_state(_routed(), 0, T0, "Asia/Barnaul", rules)
    apply_lifecycle(state, _event(state, 1, "paused", T0 + DAY), rules)
    apply_lifecycle(state, _event(state, 2, "resumed", T0 + 2.5 * DAY), rules)
    apply_lifecycle(state, _event(state, 3, "extended", T0 + 5 * DAY, extension_days=7), rules)
    assert state["adj"] == [["p", T0 + DAY, T0 + 2.5 * DAY], ["e", 7]]
    assert replay_deadline(state, rules) == (state["due"], state["warn"])
    assert state["due"] == T0 + (10 + 1.5 + 7) * DAY
    period.days = 12
    recompute(state, rules, now=T0 + 6 * DAY)
    assert state["due"] == T0 + (12 + 1.5 + 7) * DAY


@pytest.mark.parametrize("regime", ["fz59", "pos", "incident", "hotline"])
def test_real_rules_recompute_with_unchanged_files_is_a_no_op(regime: str) -> None:
    rules = DeadlineService().rules(0.75, 3 * DAY)
    state, _ = new_state(_routed("cd" * 12, regime), 1, T0, "Asia/Barnaul", rules)
    history = (("paused", T0 + 3600, {}), ("resumed", T0 + 5 * 3600, {}),
               ("extended", T0 + 2 * DAY, {"extension_days": 30}),
               ("redirected", T0 + 3 * DAY, {"to_authority_id": "22-mintrans"}),
               ("paused", T0 + 4 * DAY, {}), ("resumed", T0 + 4.2 * DAY, {}))
    for n, (kind, at, extra) in enumerate(history, start=1):
        apply_lifecycle(state, _event(state, n, kind, at, **extra), rules)
        assert replay_deadline(state, rules) == (state["due"], state["warn"]), kind
        assert recompute(state, rules, now=at).outcome == "unchanged"


@dataclass
class _Ctx:
    settings: Any
    clock: Any


@dataclass
class _Clock:
    at: float

    def now(self) -> float:
        return self.at


@dataclass
class _Runtime:
    """The part of SlaRuntime that ``recompute_partition`` uses."""

    ctx: _Ctx
    rules: SlaRules
    table: dict[bytes, Any]
    aggregates: dict[int, PartitionAggregates] = field(default_factory=dict)

    def partition_aggregates(self, p: int) -> PartitionAggregates:
        return self.aggregates.setdefault(p, PartitionAggregates())


def test_recompute_partition_reloads_calendar_and_moves_only_affected_appeals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.settings import Settings

    monkeypatch.delenv("APPEALS_POLICY_FILE", raising=False)
    calendar = tmp_path / "calendar.toml"
    calendar.write_text("[years.2026]\nnon_working = []\n")
    monkeypatch.setenv("APPEALS_CALENDAR_FILE", str(calendar))
    default_calendar.cache_clear()
    rules = DeadlineService().rules(0.75, 3 * DAY)
    table: dict[bytes, Any] = {}
    for i, regime in enumerate(("pos", "fz59", "pos")):
        state, _ = new_state(_routed(f"{i:024x}", regime), 0 if i < 2 else 1, T0,
                             "Asia/Barnaul", rules)
        table[state["id"].encode()] = state
    pos_due = table[f"{0:024x}".encode()]["due"]
    fz59_due = table[f"{1:024x}".encode()]["due"]
    rt = _Runtime(_Ctx(Settings.load({}), _Clock(T0 + DAY)), rules, table)
    # The decree adds two days off in the pos period (10 working days from 3 Nov 2026).
    calendar.write_text('[years.2026]\nnon_working = ["2026-11-05", "2026-11-06"]\n')
    try:
        data = orjson.loads(rc.control_message("req-1", 0)[1])
        moved = asyncio.run(rc.recompute_partition(rt, data, 0, {}))
    finally:
        default_calendar.cache_clear()
    assert [key for key, _, _ in moved] == [f"{0:024x}".encode()]
    _, state, effects = moved[0]
    new_due = dt.datetime.fromtimestamp(state["due"], dt.UTC)
    assert state["due"] > pos_due and effects.deadline == (pos_due, state["due"])
    assert (new_due - dt.datetime.fromtimestamp(pos_due, dt.UTC)).days in (2, 4)  # weekend
    assert table[f"{1:024x}".encode()]["due"] == fz59_due  # calendar days: unaffected here
    assert table[f"{2:024x}".encode()]["cycle"] == 0  # another partition: untouched
    assert rt.rules is not rules  # the files were re-read


def test_broken_calendar_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.settings import Settings

    bad = tmp_path / "calendar.toml"
    bad.write_text("[years.2026]\nnon_working = [\"not a date\"]\n")
    monkeypatch.setenv("APPEALS_CALENDAR_FILE", str(bad))
    rules = DeadlineService().rules(0.75, 3 * DAY)
    rt = _Runtime(_Ctx(Settings.load({}), _Clock(T0)), rules, {})
    try:
        with pytest.raises(ValueError, match="not a date"):
            asyncio.run(rc.recompute_partition(rt, {"control": "recompute", "request_id": "x"},
                                                0, {}))
    finally:
        default_calendar.cache_clear()
    assert rt.rules is rules


def test_a_misspelt_regime_table_refuses_the_recompute(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """[regimes.fz95] was taken by the reload: the recompute went ahead and every fz59 appeal
    then failed with "unknown regime 'fz59'". Now the request is refused naming the file and
    the key, and the rules in use stay."""
    from streams.settings import Settings
    from workers.deadlines.policies import PolicyError

    text = (Path(__file__).resolve().parents[2] / "workers/deadlines/policies.toml").read_text(
        encoding="utf-8")
    bad = tmp_path / "policies.toml"
    bad.write_text(text.replace("[regimes.fz59", "[regimes.fz95"), encoding="utf-8")
    rules = DeadlineService().rules(0.75, 3 * DAY)  # started with the good file
    monkeypatch.setenv("APPEALS_POLICY_FILE", str(bad))
    monkeypatch.setattr("workers.sla.deadline_service.SETTLE_S", 0.0)  # written just now
    rt = _Runtime(_Ctx(Settings.load({}), _Clock(T0)), rules, {})
    try:
        with pytest.raises(PolicyError, match=rf"^{bad}: regimes\.fz95: unknown regime"):
            asyncio.run(rc.recompute_partition(rt, {"control": "recompute", "request_id": "z"},
                                                0, {}))
    finally:
        default_calendar.cache_clear()
    assert rt.rules is rules


def test_a_refused_recompute_leaves_the_calendar_in_use(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The calendar's process-wide cache was cleared before the new file was checked: the
    refused request left every later deadline re-reading the broken file, and new appeals
    were dead-lettered as unprocessable (review of session 15)."""
    from streams.settings import Settings

    good = tmp_path / "calendar.toml"
    good.write_text("[years.2026]\nnon_working = []\n")
    monkeypatch.setenv("APPEALS_CALENDAR_FILE", str(good))
    default_calendar.cache_clear()
    try:
        rules = DeadlineService().rules(0.75, 3 * DAY)
        new_state(_routed(f"{9:024x}", "pos"), 0, T0, "Asia/Barnaul", rules)  # loads it
        good.write_text("[years.2026\n")  # the operator's typo, then a recompute request
        rt = _Runtime(_Ctx(Settings.load({}), _Clock(T0)), rules, {})
        with pytest.raises(ValueError):
            asyncio.run(rc.recompute_partition(rt, {"control": "recompute", "request_id": "y"},
                                                0, {}))
        assert rt.rules is rules
        state, _ = new_state(_routed(f"{8:024x}", "pos"), 0, T0 + DAY, "Asia/Barnaul", rules)
        assert state["due"] > T0 + DAY
    finally:
        default_calendar.cache_clear()


@pytest.mark.integration
def test_cli_publishes_one_request_per_partition(broker: Any, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from streams import topics as t
    from streams.testing import isolated_settings, read_topic

    settings = isolated_settings(broker.url, "redis://127.0.0.1:1/0", partitions=3)
    t.ensure_topics(settings)
    monkeypatch.setenv("APPEALS_KAFKA", settings.kafka)
    monkeypatch.setenv("APPEALS_TOPIC_PREFIX", settings.topic_prefix)
    assert deadlines_cli.main(["sla", "recompute", "--reason", "decree 2027"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["partitions"] == [0, 1, 2] and out["reason"] == "decree 2027"
    records = read_topic(settings, t.SLA_LIFECYCLE, until=3, timeout=30, idle=1)
    assert sorted(r.partition for r in records) == [0, 1, 2]
    for record in records:
        value = orjson.loads(record.value)
        assert rc.is_control(value) and value["partition"] == record.partition
        assert value["request_id"] == out["request_id"]
        assert record.key.startswith(rc.KEY_PREFIX)

    assert deadlines_cli.main(["sla", "recompute", "--partition", "7"]) == 2
    assert "no partition(s) [7]" in capsys.readouterr().err


def test_cli_help_documents_recompute(capsys: pytest.CaptureFixture[str]) -> None:
    assert deadlines_cli.main(["sla", "recompute", "--help"]) == 0
    text = capsys.readouterr().out
    assert "APPEALS_CALENDAR_FILE" in text and "recompute_failed" in text


@pytest.mark.integration
def test_cli_creates_no_topic_and_names_the_missing_one(
        broker: Any, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a fresh broker (or with a wrong prefix) the request auto-created
    appeals.sla.lifecycle with the broker's default partition count, which `topics create` and
    the workers then refused (review of the CLI, D2)."""
    from streams import topics as t
    from streams.testing import isolated_settings

    settings = isolated_settings(broker.url, "redis://127.0.0.1:1/0", partitions=3)
    monkeypatch.setenv("APPEALS_KAFKA", settings.kafka)
    monkeypatch.setenv("APPEALS_TOPIC_PREFIX", settings.topic_prefix)
    topic = t.topic_name(settings, t.SLA_LIFECYCLE)
    assert deadlines_cli.main(["sla", "recompute", "--timeout", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"appeals sla recompute: error: topic {topic} does not exist (check "
                   "APPEALS_TOPIC_PREFIX, or run `appeals topics create`)"), err
    assert topic not in t.existing_topics(settings.kafka_bootstrap)
