"""The rebalance run keeps input arriving until the second worker has its partitions.

With all of the run's input pre-produced, a small ``--rebalance-events`` (or a fast host) let
the first worker consume everything before the second had joined: "no rebalance seen", the
verdict false, with nothing wrong. Now half is pre-produced and the rest is sent while the run
goes on, spread over a minute until the second worker is assigned, then at once.

Here the whole scale-out phase runs against a scripted consumer group (no broker, Redis or
worker): each snapshot is a step of time in which the group commits a tenth of the run and the
feed sends one record; the second worker gets its assignment a few steps after it starts,
later than the pre-produced input lasts.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from streams import topics as t
from workers.bench import procstat, runner

GEN_LINE = "[2026-11-28 00:00:00,000] [1] [INFO] generation id {g} app consumers id {g} \n"
N = 1000
#: Snapshots from the second worker's start to its assignment (and the first's second one):
#: more than the 7 in which the group commits the 70% of the run left when it starts.
JOIN_STEPS = 8


class Group:
    """One consumer group per run (its app id): what was produced, committed, who started."""

    def __init__(self) -> None:
        self.produced = 0
        self.committed = 0
        self.logs: list[Path] = []
        self.second_started_at: int | None = None
        self.steps = 0
        self.feeders: list[Any] = []


def script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, second_joins: bool = True,
           ) -> dict[str, Group]:
    groups: dict[str, Group] = {}

    def group(settings: Any) -> Group:
        return groups.setdefault(settings.app_id, Group())

    def intake_count(messages: list[Any]) -> int:
        return sum(1 for base, _, _ in messages if base.startswith("appeals.intake."))

    def produce(settings: Any, messages: list[Any]) -> float:
        group(settings).produced += intake_count(messages)
        return 1.0

    class Feeder:
        def __init__(self, settings: Any, messages: list[Any], seconds: float,
                     say: Any) -> None:
            self.group, self.messages, self.sent = group(settings), messages, 0
            self.rushed = False
            self.group.feeders.append(self)

        def start(self) -> None:
            pass

        def step(self) -> None:
            before = self.sent
            self.sent = len(self.messages) if self.rushed else min(len(self.messages),
                                                                   self.sent + 1)
            self.group.produced += intake_count(self.messages[before:self.sent])

        def rush(self) -> None:
            self.rushed = True

        def check(self) -> None:
            pass

        def stop(self) -> None:
            self.rush()
            self.step()

    class Worker:
        alive = True

        def __init__(self, settings: Any, log_path: Path, **kwargs: Any) -> None:
            self.group = group(settings)
            self.log_path = tmp_path / f"{settings.app_id}-{log_path.name}"
            self.proc: Any = None

        def start(self) -> Worker:
            g = self.group
            if g.logs:
                g.second_started_at = g.steps
            g.logs.append(self.log_path)
            self.log_path.write_text(GEN_LINE.format(g=0) if len(g.logs) == 1 else "")
            self.proc = SimpleNamespace(pid=1, poll=lambda: None)
            return self

        def stop(self) -> None:
            pass

    class Progress:
        def __init__(self, bootstrap: str, app_id: str, topics: list[str]) -> None:
            self.topics = topics
            self.group = groups.setdefault(app_id, Group())

        def snapshot(self) -> Any:
            import time

            g = self.group
            g.steps += 1
            for f in g.feeders:
                f.step()
            g.committed = min(g.produced, g.committed + N // 10)
            if (second_joins and g.second_started_at is not None
                    and g.steps - g.second_started_at >= JOIN_STEPS):
                g.logs[0].write_text("".join(GEN_LINE.format(g=i) for i in (0, 1)))
                for log in g.logs[1:]:
                    log.write_text(GEN_LINE.format(g=1))
            c = dict.fromkeys(self.topics, 0)
            e = dict.fromkeys(self.topics, 0)
            for topic in self.topics:
                if topic.endswith("." + t.intake_topic("web")):
                    c[topic], e[topic] = g.committed, g.produced
                elif topic.endswith("." + t.ROUTED):
                    c[topic] = e[topic] = g.committed  # every appeal routed
                elif topic.endswith("." + t.REGISTERED):
                    e[topic] = g.committed
            return SimpleNamespace(at=time.monotonic(), committed=c, end=e, confirmed=True)

        def close(self) -> None:
            pass

    monkeypatch.setattr("streams.testing.WorkerProcess", Worker)
    monkeypatch.setattr(procstat, "GroupProgress", Progress)
    monkeypatch.setattr(procstat, "cpu_seconds", lambda pid: 0.0)
    monkeypatch.setattr(procstat, "peak_rss_mb", lambda pid: 0.0)
    monkeypatch.setattr(runner, "verify_effect",
                        lambda *a, **k: {"exactly_once_in_effect": True})
    # No Redis here: the figures published nothing after the inputs were committed.
    monkeypatch.setattr(runner, "last_publication",
                        lambda settings, since, sample: (since, sample(), True))
    monkeypatch.setattr(runner, "produce", produce)
    monkeypatch.setattr(runner, "Feeder", Feeder, raising=False)
    monkeypatch.setattr(t, "ensure_topics", lambda settings: [])
    monkeypatch.setattr("time.sleep", lambda s: None)
    return groups


def scaleout(tmp_path: Path) -> dict[str, Any]:
    b = runner.Bench(runner.BenchOptions(events=N, scaleout_events=N, rebalance_events=N,
                                         log_dir=tmp_path))
    ids = [f"a{i}" for i in range(N)]
    work = runner.Workload([(t.intake_topic("web"), None, b"{}")] * N, [],
                           dict.fromkeys(ids, "web"))
    return b.scaleout("kafka://127.0.0.1:1", "redis://127.0.0.1:1/0", work,
                      {"events_per_s": 5.0})


def test_a_small_run_still_rebalances_while_input_arrives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pre-produced whole, these 1,000 appeals were all committed 7 steps after the second
    # worker started, a step before its assignment: no rebalance seen, verdict false.
    script(monkeypatch, tmp_path)
    reb = scaleout(tmp_path)["rebalance"]
    assert reb["rebalance_seen"] is True, reb
    assert reb["exactly_once_across_rebalance"] is True
    assert reb["assigned_at_share"] is not None and reb["assigned_at_share"] < 1.0
    assert reb["fed_records"] == N // 2
    assert 0 < reb["fed_before_assignment"] < N // 2


def test_a_second_worker_never_assigned_still_fails_the_verdict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The feed outlasts a join; it does not stand in for one: the input runs out, the run
    # ends, and no rebalance was seen.
    groups = script(monkeypatch, tmp_path, second_joins=False)
    reb = scaleout(tmp_path)["rebalance"]
    assert reb["rebalance_seen"] is False
    assert reb["exactly_once_across_rebalance"] is False
    assert reb["fed_before_assignment"] is None
    assert all(g.produced == N for g in groups.values())  # the whole input went in


def test_split_keeps_each_appeal_with_its_lifecycle() -> None:
    appeals = [(t.intake_topic("web"), None, f"{i}".encode()) for i in range(4)]
    life = [(t.LIFECYCLE, f"a{i}".encode(), f"e{i}{j}".encode())
            for j in range(2) for i in range(4)]
    work = runner.Workload(appeals, life, {f"a{i}": "web" for i in range(4)})
    head, tail = work.split(0.5)
    assert head == appeals[:2] + [m for m in life if m[1] in (b"a0", b"a1")]
    assert tail == [appeals[2], (t.LIFECYCLE, b"a2", b"e20"), (t.LIFECYCLE, b"a2", b"e21"),
                    appeals[3], (t.LIFECYCLE, b"a3", b"e30"), (t.LIFECYCLE, b"a3", b"e31")]


def test_the_feeder_paces_then_sends_the_rest_at_once_on_the_real_broker(broker: Any) -> None:
    """On the real broker: spread over 10 minutes, a few records go in the first moment; the
    rest go at once after rush(), every one of them, in order."""
    import time

    from streams.testing import isolated_settings, read_topic

    settings = isolated_settings(broker.url, "redis://127.0.0.1:1/0", partitions=1)
    t.ensure_topics(settings)
    messages = [(t.LIFECYCLE, b"k", f"{i}".encode()) for i in range(600)]
    feeder = runner.Feeder(settings, messages, 600.0, lambda line: None)
    feeder.start()
    deadline = time.monotonic() + 60
    while feeder.sent < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 1 <= feeder.sent < len(messages)  # paced: one a second
    feeder.rush()
    feeder.stop()
    feeder.check()
    assert feeder.sent == len(messages)
    got = read_topic(settings, t.LIFECYCLE, until=len(messages), timeout=60, idle=1.0)
    assert [r.value for r in got] == [v for _, _, v in messages]
