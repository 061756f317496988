"""Triage and redirects through a real worker on the real broker and Redis.

- Below the confidence threshold an appeal goes to ``appeals.triage`` with its top-3
  candidates, not to an authority; a human's ``triaged`` decision routes it, once.
- A ``redirected`` event moves the appeal to the named body and restarts its clock there (the
  new deadline is the receiving body's period from the redirect's date, exactly); a
  redirect to an unknown body, or to the body a complaint is about, is refused and
  dead-lettered with its reason.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import orjson
import pytest
import redis

from streams import topics as t
from streams.testing import isolated_settings, produce, read_topic, running_worker, wait_for
from workers.deadlines.compute import answer_due
from workers.geo.regions import region_timezone
from workers.intake.core import appeal_id_for
from workers.routing import RouteInput, Router, load_rules
from workers.sla.deadline_service import load_book

pytestmark = pytest.mark.integration

N = 30
#: How long after registration the redirects are dated: longer than any run of non-working
#: days (the New Year holidays run up to 12), so the two deadlines fall on different days.
REDIRECT_AFTER = dt.timedelta(days=20, hours=3)


def _intake(i: int, **extra: object) -> bytes:
    return orjson.dumps({
        "schema_version": 1, "channel": "web", "external_id": f"tr-{i}",
        "submitted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "region": "22",
        "text": f"Обращение {i}: на дороге по улице Ленина яма, машины бьют колёса",
        "municipality": "Барнаул", **extra,
    })


def _due_at(client: redis.Redis, key: str) -> dt.datetime:
    raw = client.hget(key, "due_at")
    assert raw is not None, key
    return dt.datetime.fromisoformat(raw.decode())


def _expected_due(router: Router, authority: str, start: dt.datetime) -> dt.datetime:
    """The answer deadline of a 59-FZ roads appeal of the region whose clock ``authority``
    starts at ``start``: the deadline rules (separately unit-tested) in the body's zone, as
    the SLA agent counts them."""
    book = load_book(router.rules.authorities.values())
    policy = book.resolve("fz59", region="22", authority=authority, category="roads",
                          subcategory=None)
    zone = policy.timezone or router.authority(authority).timezone or region_timezone("22")
    return answer_due("fz59", start, zone, policy).replace(microsecond=0)


def _event(appeal_id: str, n: int, event: str, **extra: object) -> tuple[str, bytes, bytes]:
    doc = {"schema_version": 1, "event_id": f"{appeal_id}:{n}", "appeal_id": appeal_id,
           "event": event, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **extra}
    return (t.LIFECYCLE, appeal_id.encode(), orjson.dumps(doc))


def test_triage_then_redirects(broker, redis_server, tmp_path: Path) -> None:
    # Confidence is never 1.0, so with this threshold every appeal needs a human.
    # The redirects are stamped 20 days after registration, ahead of the real clock: the agent
    # is told to accept them (tests/sla/test_sla_future_stamps.py checks the refusal).
    settings = isolated_settings(broker.url, redis_server.url, triage_confidence=1.0,
                                 sla_future_tolerance=30 * 86400.0)
    t.ensure_topics(settings)
    ids = [appeal_id_for("web", f"tr-{i}") for i in range(N)]
    complaint_id = ids[-1]
    messages = [(t.intake_topic("web"), None, _intake(i)) for i in range(N - 1)]
    messages.append((t.intake_topic("web"), None, _intake(N - 1,
                                                          complaint_about="22-barnaul-kdht")))
    router = Router(load_rules())

    with running_worker(settings, tmp_path / "worker.log") as worker:
        produce(settings, messages)
        triage = [orjson.loads(r.value) for r in read_topic(settings, t.TRIAGE, until=N)]
        assert sorted(d["appeal_id"] for d in triage) == sorted(ids)
        for item in triage:
            assert 1 <= len(item["candidates"]) <= 3
            scores = [c["score"] for c in item["candidates"]]
            assert scores == sorted(scores, reverse=True)
        assert read_topic(settings, t.ROUTED, timeout=5, idle=2) == [], "nothing routed yet"

        # Humans decide: every appeal is about roads; a repeated decision changes nothing.
        decisions = [_event(a, 1, "triaged", category="roads", urgent=False) for a in ids]
        produce(settings, decisions + decisions[:5])
        routed = [orjson.loads(r.value) for r in read_topic(settings, t.ROUTED, until=N)]
        assert Counter(d["appeal_id"] for d in routed) == Counter(ids), "each routed once"
        registered = {orjson.loads(r.value)["appeal_id"]: orjson.loads(r.value)
                      for r in read_topic(settings, t.REGISTERED, until=N)}
        for d in routed:
            src = registered[d["appeal_id"]]
            expected = router.route(RouteInput(
                appeal_id=d["appeal_id"], region_code="22", category="roads",
                municipality=src.get("municipality"), text=src["text"],
                complaint_about=src.get("complaint_about")))
            assert d["category"] == "roads" and d["classifier_version"] == "triage"
            assert d["authority_id"] == expected.authority_id
        by_id = {d["appeal_id"]: d for d in routed}
        assert by_id[complaint_id]["authority_id"] != "22-barnaul-kdht"

        client = redis.Redis.from_url(settings.redis)
        prefix = f"{settings.app_id}:"

        def tracked() -> bool:
            return all(client.hget(f"{prefix}appeal:{a}", "authority_id") for a in ids)

        wait_for(tracked, timeout=60, what="SLA state for every routed appeal")
        due_before = {a: _due_at(client, f"{prefix}appeal:{a}") for a in ids[:10]}

        # Redirects: ten valid ones, one to an unknown body, one complaint back to its target.
        # The valid ones are dated REDIRECT_AFTER past registration, so the receiving body's
        # 30 days (its clock restarts, DESIGN §2) end on another day than the first body's.
        redirected_at = {a: dt.datetime.fromisoformat(registered[a]["registered_at"])
                         + REDIRECT_AFTER for a in ids[:10]}
        due_after = {a: _expected_due(router, "22-minzdrav", at)
                     for a, at in redirected_at.items()}
        for a in ids[:10]:
            assert due_after[a] > due_before[a], (a, "the test's dates restart no clock")
        redirects = [_event(a, 2, "redirected", to_authority_id="22-minzdrav",
                            at=redirected_at[a].isoformat(timespec="seconds"))
                     for a in ids[:10]]
        redirects.append(_event(ids[10], 2, "redirected", to_authority_id="22-no-such-body"))
        redirects.append(_event(complaint_id, 2, "redirected", to_authority_id="22-barnaul-kdht"))
        produce(settings, redirects)

        def redirected() -> bool:
            return all(client.hget(f"{prefix}appeal:{a}", "authority_id") == b"22-minzdrav"
                       for a in ids[:10])

        wait_for(redirected, timeout=60, what="redirects applied")
        for a in ids[:10]:
            # The clock restarted at the redirect: the new body's own 30 days from then.
            assert _due_at(client, f"{prefix}appeal:{a}") == due_after[a], a
        dead = [orjson.loads(r.value) for r in read_topic(settings, t.DEADLETTER, until=2)]
        assert sorted(d["reason"] for d in dead) == ["redirect_refused", "redirect_refused"]
        assert client.hget(f"{prefix}appeal:{ids[10]}", "authority_id") == \
            by_id[ids[10]]["authority_id"].encode()
        assert client.hget(f"{prefix}appeal:{complaint_id}", "authority_id") == \
            by_id[complaint_id]["authority_id"].encode()
        assert "Traceback" not in worker.log_text()
