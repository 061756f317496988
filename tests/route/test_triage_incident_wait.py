"""An incident or hotline appeal waits in triage ``APPEALS_TRIAGE_INCIDENT_MAX_WAIT``, not a day.

Before, every pending copy waited the one ``APPEALS_TRIAGE_MAX_WAIT`` (a day by default). In
triage an appeal has no SLA state, so an incident, whose first public response is due within
1-8 working hours (DESIGN §2; 4 for high importance), waited a whole day unwatched: no warning,
and its breach known only once the timeout had routed it to the desk. The hotline's callback
(8 working hours in the packaged policy) the same. Now:

- a pending copy of those regimes waits the shorter wait (an hour unless set), others the day;
- the wait is stored with the copy when it is stored: a replay (or a restart) waits the same,
  a setting changed later applies to copies stored from then on, and a copy stored by an older
  version (no wait) gets the present setting's;
- the waiting index is ordered by when each wait ends, so an incident behind an older 59-FZ
  letter on its partition is not held up by it;
- a decision after the copy's own wait is late (a redirect from the desk), whichever topic a
  fetch brought first.

No broker: ``process_batch`` with a recording outbox and a dict for the table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from streams import topics as t
from streams.settings import ConfigError, Settings
from tests.route.test_triage_timeout import (
    DECISIONS,
    DESK,
    MAX_WAIT,
    PENDING,
    SETTINGS,
    T0,
    Outbox,
    _installed,
    decision,
    event,
    ids_on,
    pending,
    tick,
)
from workers.route import agent as A
from workers.routing import Router, load_rules

SHORT = 3600.0
X, Y, Z, V, W = ids_on(1, 5)


class Worker:
    def __init__(self, router: Router, table: dict[bytes, Any] | None = None,
                 short: float = SHORT) -> None:
        self.router = router
        self.table: dict[bytes, Any] = {} if table is None else table
        self.early = A.EarlyDecisions(SETTINGS.partitions, MAX_WAIT, short)
        self.early.rebuild(self.table.items(), set(range(SETTINGS.partitions)))

    def run(self, *events: Any) -> Outbox:
        outbox = Outbox()
        asyncio.run(A.process_batch(outbox, self.table, self.router,  # type: ignore[arg-type]
                                    self.early, list(events), DECISIONS))
        return outbox


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_rules())


def routed(out: Outbox) -> list[tuple[str, str, str]]:
    return [(r["appeal_id"], r["authority_id"], r["routing_level"]) for r in out.on(t.ROUTED)]


@pytest.mark.parametrize("regime", ["incident", "hotline"])
def test_an_hours_regime_goes_to_the_desk_after_its_wait_past_an_older_letter(
        router: Router, regime: str) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(X), T0),
               event(PENDING, pending(Y, regime=regime, importance="high"), T0 + 10),
               event(PENDING, pending(Z, regime="pos"), T0 + 20))
    assert worker.table[Y.encode()]["wait"] == SHORT
    assert worker.table[X.encode()]["wait"] == worker.table[Z.encode()]["wait"] == MAX_WAIT
    assert worker.early.copies_waiting({1}, regime) == (1, T0 + 10)
    assert worker.run(tick(1, T0 + 10 + SHORT - 1)).sent == []
    # The older 59-FZ letter, first on the partition, is not due: the incident behind it is.
    out = worker.run(tick(1, T0 + 10 + SHORT))
    assert routed(out) == [(Y, DESK, "triage_timeout")] and out.dead == []
    [record] = out.on(t.ROUTED)
    assert (record["regime"], record["urgent"]) == (regime, True), "its deadlines, from now"
    assert worker.early.copies_waiting({1}) == (2, T0)
    assert worker.early.copies_waiting({1}, regime) == (0, None)
    assert routed(worker.run(tick(1, T0 + MAX_WAIT + 19))) == [(X, DESK, "triage_timeout")]
    assert routed(worker.run(tick(1, T0 + MAX_WAIT + 20))) == [(Z, DESK, "triage_timeout")]


def test_the_wait_is_stored_with_the_copy_and_a_changed_setting_does_not_rejudge_it(
        router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(Y, regime="incident"), T0))
    # Restarted with a shorter wait (the index rebuilt from the table): Y keeps its hour.
    again = Worker(router, table=worker.table, short=600)
    # Stored by an older version, without a wait: the present setting's.
    again.table[V.encode()] = {**pending(V, regime="incident"), "since": T0 + 1, "p": 1,
                               "offset": 9}
    again = Worker(router, table=again.table, short=600)
    # A replay of Y's copy does not store it again with the new wait.
    again.run(event(PENDING, pending(Y, regime="incident"), T0),
              event(PENDING, pending(Z, regime="incident"), T0 + 5))
    assert again.table[Y.encode()]["wait"] == SHORT
    assert again.table[Z.encode()]["wait"] == 600
    assert routed(again.run(tick(1, T0 + 600))) == []
    assert routed(again.run(tick(1, T0 + 605))) == [(V, DESK, "triage_timeout"),
                                                     (Z, DESK, "triage_timeout")]
    assert routed(again.run(tick(1, T0 + SHORT - 1))) == []
    assert routed(again.run(tick(1, T0 + SHORT))) == [(Y, DESK, "triage_timeout")]


def test_a_stored_wait_that_is_no_number_is_the_regime_s(router: Router) -> None:
    table: dict[bytes, Any] = {
        a.encode(): {**pending(a, regime="incident"), "since": T0, "p": 1, "offset": n,
                     "wait": bad}
        for n, (a, bad) in enumerate(((Y, "3600"), (Z, True), (V, -5)))}
    worker = Worker(router, table=table, short=900)
    assert routed(worker.run(tick(1, T0 + 899))) == []
    assert sorted(routed(worker.run(tick(1, T0 + 900)))) == sorted(
        (a, DESK, "triage_timeout") for a in (Y, Z, V))


def test_a_decision_in_the_incident_s_wait_routes_it_and_one_after_redirects_it(
        router: Router) -> None:
    worker = Worker(router)
    worker.run(event(PENDING, pending(Y, regime="incident"), T0),
               event(PENDING, pending(Z, regime="incident"), T0 + 10))
    out = worker.run(event(DECISIONS, decision(Y), T0 + SHORT - 1))
    assert routed(out) == [(Y, "22-minzdrav", "region_category")]
    out = worker.run(tick(1, T0 + 10 + SHORT), event(DECISIONS, decision(Z), T0 + 10 + SHORT))
    assert routed(out) == [(Z, DESK, "triage_timeout")]
    [redirect] = out.on(t.SLA_LIFECYCLE)
    assert (redirect["authority_id"], redirect["to_authority_id"]) == (DESK, "22-minzdrav")


def test_a_decision_that_overtook_its_incident_past_the_copy_s_wait_is_late(
        router: Router) -> None:
    """The decisions topic read ahead of the pending one: the decision's clock is past the
    incident's hour (not past a day), so the copy is late when it comes, as it would have been
    had it been read first."""
    worker = Worker(router)
    worker.run(event(DECISIONS, decision(Y), T0 + SHORT))
    out = worker.run(event(PENDING, pending(Y, regime="incident"), T0))
    assert routed(out) == [(Y, DESK, "triage_timeout")]
    [redirect] = out.on(t.SLA_LIFECYCLE)
    assert redirect["to_authority_id"] == "22-minzdrav"
    # One second inside the wait: routed by the decision.
    worker.run(event(DECISIONS, decision(Z), T0 + SHORT + 9))
    out = worker.run(event(PENDING, pending(Z, regime="incident"), T0 + 10))
    assert routed(out) == [(Z, "22-minzdrav", "region_category")]
    assert out.on(t.SLA_LIFECYCLE) == []


def test_the_installed_agent_takes_the_incident_wait_from_the_settings(
        router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a changelog brought back: an incident and a letter, both waiting since T0, stored
    # by a version without a wait of their own.
    table: dict[bytes, Any] = {
        X.encode(): {**pending(X), "since": T0, "p": 1, "offset": 0},
        Y.encode(): {**pending(Y, regime="incident"), "since": T0, "p": 1, "offset": 1}}
    agent, _clock, outbox = _installed(router, table, {1}, monkeypatch)

    async def stream(_: Any, __: Any) -> AsyncIterator[list[Any]]:
        yield [tick(1, T0 + 3600)]

    asyncio.run(agent(stream))
    assert routed(outbox) == [(Y, DESK, "triage_timeout")]


def test_the_incident_wait_setting() -> None:
    assert Settings.load({}).triage_incident_max_wait is None
    assert Settings.load({}).triage_short_wait == 3600
    assert Settings.load({"APPEALS_TRIAGE_MAX_WAIT": "600"}).triage_short_wait == 600, (
        "a global wait under an hour still starts: incidents wait no longer than it")
    assert Settings.load({"APPEALS_TRIAGE_INCIDENT_MAX_WAIT": "900"}).triage_short_wait == 900
    assert Settings.load({"APPEALS_TRIAGE_INCIDENT_MAX_WAIT": "86400"}).triage_short_wait == 86400
    for bad in ({"APPEALS_TRIAGE_INCIDENT_MAX_WAIT": "59"},
                {"APPEALS_TRIAGE_INCIDENT_MAX_WAIT": "0"},
                {"APPEALS_TRIAGE_INCIDENT_MAX_WAIT": "86401"},
                {"APPEALS_TRIAGE_MAX_WAIT": "600", "APPEALS_TRIAGE_INCIDENT_MAX_WAIT": "601"}):
        with pytest.raises(ConfigError, match="APPEALS_TRIAGE_INCIDENT_MAX_WAIT must be"):
            Settings.load(bad)
    assert "APPEALS_TRIAGE_INCIDENT_MAX_WAIT" in {row[0] for row in Settings.describe()}


def test_the_tick_interval_is_checked_against_the_incident_wait() -> None:
    """The tick interval was checked against APPEALS_TRIAGE_MAX_WAIT only: 10800 s was taken,
    and an incident copy on a quiet partition reached the desk hours after its hour."""
    def tick(interval: float, **env: str) -> float:
        return Settings.load({"APPEALS_TRIAGE_TICK_INTERVAL": str(interval), **env}
                             ).triage_tick_interval

    assert tick(3600) == 3600  # the default incident wait
    assert tick(7200, APPEALS_TRIAGE_INCIDENT_MAX_WAIT="7200") == 7200
    for interval, env in ((10800, {}), (3601, {}),
                          (7201, {"APPEALS_TRIAGE_INCIDENT_MAX_WAIT": "7200"}),
                          (601, {"APPEALS_TRIAGE_MAX_WAIT": "600"})):
        with pytest.raises(ConfigError, match="APPEALS_TRIAGE_TICK_INTERVAL must be") as err:
            tick(interval, **env)
        assert "APPEALS_TRIAGE_INCIDENT_MAX_WAIT" in str(err.value)
        assert "APPEALS_TRIAGE_MAX_WAIT" in str(err.value)
