"""End to end on the real broker and Redis: figures, ratings, API, page, metrics, replay.

The test writes routed appeals and authorities' answers straight to ``appeals.routed`` and
``appeals.lifecycle`` (routing is not under test: the authority of each appeal must be known),
lets a real worker process (``appeals worker``) handle them, and compares what comes out with
figures it computes itself from its own input. Times are chosen with margins of days around
every deadline (59-FZ: 30 calendar days, possibly moved by a few days off), so the truth does
not depend on the deadline code: on time = answered within 25 days; late = answered after 40;
overdue = registered 45-50 days ago and never answered; open = registered within 15 days.
Escalations are pushed a year away so that no race between an escalation tick and a late
answer can make the figures depend on timing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis as redis_sync

from schemas.records import RoutedAppeal
from streams import topics as t
from streams.devstack import Broker, RedisServer, free_port
from streams.processes import start_worker, stop_process, worker_env
from streams.settings import Settings
from workers.aggregates.partials import oldest_kept_day
from workers.aggregates.readmodel import WINDOWS, read_figures
from workers.aggregates.sketch import RELATIVE_ACCURACY
from workers.deadlines.compute import redirect_due
from workers.routing import load_rules
from workers.sla.deadline_service import load_book

pytestmark = pytest.mark.integration

DAY = 86400
TZ = ZoneInfo("Asia/Barnaul")  # region 22
LOG_DIR = Path(os.environ.get("APPEALS_TEST_LOG_DIR", "var/test-logs"))
MIN_VOLUME = 10
WINDOW_NAMES = ("1d", "7d", "30d", "all")
# authority -> (on time, late, overdue, open), categories and municipalities cycle
PLAN = {"22-minzdrav": (20, 6, 4, 5), "22-minsoc": (14, 8, 6, 4), "22-mincifry": (3, 1, 0, 2)}
CATEGORIES = ("healthcare", "social", "roads")
MUNIS = ("barnaul", "biysk", None)


@dataclass
class Appeal:
    appeal_id: str
    auth: str
    category: str
    muni: str | None
    reg: int
    fate: str  # on_time | late | overdue | open
    answer: int | None = None

    @property
    def subjects(self) -> list[str]:
        out = [self.auth, f"cat:{self.category}"]
        if self.muni:
            out.append(f"muni:{self.muni}")
        return out


def day_of(ts: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts, TZ).date()


def in_window(day: dt.date, today: dt.date, window: str) -> bool:
    if window == "all":  # everything the partials keep: old day buckets expire
        return day.isoformat() >= oldest_kept_day(time.time())
    return today - dt.timedelta(days=WINDOWS[window] - 1) <= day <= today


def make_plan(now: int, run: str) -> list[Appeal]:
    rng = random.Random(22)
    out: list[Appeal] = []
    i = 0
    for auth, counts in PLAN.items():
        for fate, n in zip(("on_time", "late", "overdue", "open"), counts, strict=True):
            for _ in range(n):
                i += 1
                cat, muni = CATEGORIES[i % 3], MUNIS[i % 3]
                aid = f"fz59-e2e{run}-{i}"
                if fate == "on_time":
                    answer = now - int(rng.uniform(0.05, 27) * DAY)
                    a = Appeal(aid, auth, cat, muni, answer - int(rng.uniform(0.2, 25) * DAY),
                               fate, answer)
                elif fate == "late":
                    reg = now - int((45 + rng.uniform(0, 5)) * DAY)
                    a = Appeal(aid, auth, cat, muni, reg, fate,
                               min(now - 60, reg + int(rng.uniform(40, 45) * DAY)))
                elif fate == "overdue":
                    a = Appeal(aid, auth, cat, muni,
                               now - int((45 + rng.uniform(0, 5)) * DAY), fate)
                else:
                    a = Appeal(aid, auth, cat, muni, now - int(rng.uniform(0.5, 15) * DAY), fate)
                out.append(a)
    # The target of the late event: open, registered ten days ago, answered later "3 days ago".
    out.append(Appeal(f"fz59-e2e{run}-late", "22-minzdrav", "healthcare", "barnaul",
                      now - 10 * DAY, "open"))
    return out


def truth(appeals: list[Appeal], subject: str, window: str, today: dt.date) -> dict[str, Any]:
    mine = [a for a in appeals if subject in a.subjects]
    answered = [a for a in mine if a.answer is not None
                and in_window(day_of(a.answer), today, window)]
    on_time = [a for a in answered if a.fate in ("on_time", "open")]
    breached = [a for a in mine if a.fate in ("late", "overdue")]
    samples = sorted(float(a.answer - a.reg) for a in answered if a.answer is not None)
    fig = {
        "received": sum(in_window(day_of(a.reg), today, window) for a in mine),
        "answered": len(answered),
        "answered_on_time": len(on_time),
        "open": sum(a.answer is None for a in mine),
        "open_overdue": sum(a.fate == "overdue" for a in mine),
        # breaches fall 12..25 days ago by construction: in 30d and all only
        "breaches": len(breached) if window in ("30d", "all") else 0,
        "escalations": 0,
    }
    denominator = fig["answered"] + fig["open_overdue"]
    fig["on_time_share"] = fig["answered_on_time"] / denominator if denominator else None
    fig["samples"] = samples
    return fig


def check_figures(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    for key in ("received", "answered", "answered_on_time", "open", "open_overdue",
                "breaches", "escalations"):
        assert got[key] == want[key], f"{where}: {key} {got[key]} != {want[key]}"
    if want["on_time_share"] is None:
        assert got["on_time_share"] is None, where
    else:
        assert got["on_time_share"] == pytest.approx(want["on_time_share"]), where
    samples = want["samples"]
    for q, name in ((0.5, "median_response_s"), (0.9, "p90_response_s")):
        if not samples:
            assert got[name] is None, where
            continue
        exact = samples[int(q * (len(samples) - 1))]
        assert abs(got[name] - exact) <= RELATIVE_ACCURACY * exact * 1.0001, (where, name)


def expected_score(figs: dict[str, dict[str, Any]], auth: str, past: bool = False
                   ) -> float | None:
    """The documented formula, written again here from the README's description."""
    def parts(f: dict[str, Any]) -> tuple[int, int, int, int]:
        overdue = f["open_overdue"]
        if past:  # backlog of a past window: its breaches not answered within it
            overdue = max(0, f["breaches"] - (f["answered"] - f["answered_on_time"]))
        return f["answered"] + overdue, f["answered_on_time"], f["breaches"], overdue

    pooled_k = sum(parts(f)[1] for f in figs.values())
    pooled_n = sum(parts(f)[0] for f in figs.values())
    p0 = pooled_k / pooled_n if pooled_n else 0.5
    n, k, b, o = parts(figs[auth])
    if n < MIN_VOLUME:
        return None
    shrunk = (k + 10 * p0) / (n + 10)
    return round(100 * shrunk * (1 - 0.25 * min(1, b / n)) * (1 - 0.25 * o / n), 1)


# --------------------------------------------------------------------------- the scenario
@dataclass
class Scenario:
    settings: Settings
    appeals: list[Appeal]
    now: int
    worker: subprocess.Popen[bytes]
    worker_metrics: int
    api: subprocess.Popen[bytes]
    api_url: str
    redis: redis_sync.Redis

    @property
    def prefix(self) -> str:
        return f"{self.settings.app_id}:"


def _routed(a: Appeal) -> bytes:
    return RoutedAppeal(
        appeal_id=a.appeal_id, regime="fz59", region="22",
        registered_at=dt.datetime.fromtimestamp(a.reg, dt.UTC).isoformat(),
        category=a.category, urgent=False, confidence=0.9, authority_id=a.auth,
        routing_level="region_category", rule_version="test", routed_at="2026-01-01T00:00:00Z",
        municipality=a.muni,
    ).to_json()


def _answer(a: Appeal, at: int) -> bytes:
    return json.dumps({"schema_version": 1, "event_id": f"{a.appeal_id}:answered",
                       "appeal_id": a.appeal_id, "event": "answered",
                       "at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat()}).encode()


def produce(settings: Settings, messages: list[tuple[str, str, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    async def main() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for base, key, value in messages:
                await producer.send(t.topic_name(settings, base), value, key=key.encode())
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(main())


def wait_for(prefix: str, client: redis_sync.Redis, partitions: int, appeals: list[Appeal],
             timeout: float = 180.0) -> None:
    """Until the all-time figures of every authority equal the truth (or fail with the diff)."""
    deadline = time.monotonic() + timeout
    today = day_of(int(time.time()))
    last: Any = None
    while time.monotonic() < deadline:
        figs = read_figures(client, prefix, partitions, None, "all")
        last = {}
        for auth in PLAN:
            want = truth(appeals, auth, "all", today)
            got = figs[auth].to_dict() if auth in figs else None
            last[auth] = (got and {k: got[k] for k in ("received", "answered", "open_overdue",
                                                        "breaches", "open")},
                          {k: want[k] for k in ("received", "answered", "open_overdue",
                                                "breaches", "open")})
        if all(g == w for g, w in last.values()):
            return
        time.sleep(0.5)
    pytest.fail(f"figures did not converge in {timeout:.0f} s: {last}")


def http_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def _start_api(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = worker_env(settings, 0)
    env.update({"APPEALS_RATING_MIN_VOLUME": str(MIN_VOLUME), "APPEALS_RATING_REFRESH": "1",
                "APPEALS_API_PORT": str(port)})
    with open(LOG_DIR / f"api-{settings.app_id}.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "api"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the API exited with {proc.returncode}; see {LOG_DIR}")
        try:
            if http_json(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_process(proc)
    pytest.fail("the API did not answer /healthz within 60 s")


@pytest.fixture(scope="module")
def scenario(broker: Broker, redis_server: RedisServer) -> Iterator[Scenario]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:6]
    settings = Settings.load({}).replace(
        kafka=broker.url, redis=redis_server.url, partitions=4, app_id=f"agge2e-{run}",
        topic_prefix=f"agge2e{run}.", session_timeout=6.0, time_scale=1.0, clock_epoch=0.0,
        escalation_after=365.0 * DAY, log_level="info",
    )
    t.ensure_topics(settings)
    now = int(time.time())
    appeals = make_plan(now, run)
    metrics_port = free_port()
    worker = start_worker(settings, metrics_port, LOG_DIR / f"worker-{settings.app_id}.log")
    api_port = free_port()
    api = None
    try:
        messages = [(t.ROUTED, a.appeal_id, _routed(a)) for a in appeals]
        messages += [(t.LIFECYCLE, a.appeal_id, _answer(a, a.answer)) for a in appeals
                     if a.answer is not None]
        produce(settings, messages)
        client = redis_sync.Redis.from_url(settings.redis)
        wait_for(f"{settings.app_id}:", client, settings.partitions, appeals)
        api = _start_api(settings, api_port)
        yield Scenario(settings, appeals, now, worker, metrics_port, api,
                       f"http://127.0.0.1:{api_port}", client)
    finally:
        if api is not None:
            stop_process(api)
        stop_process(worker)


def _late_target(s: Scenario) -> Appeal:
    return next(a for a in s.appeals if a.appeal_id.endswith("-late"))


# --------------------------------------------------------------------------- the checks
def test_read_model_matches_the_truth(scenario: Scenario) -> None:
    s = scenario
    today = day_of(int(time.time()))
    subjects = [*PLAN, "cat:healthcare", "cat:roads", "muni:barnaul", "muni:biysk"]
    for window in WINDOW_NAMES:
        figs = read_figures(s.redis, s.prefix, s.settings.partitions, today, window, "any")
        for subject in subjects:
            check_figures(figs[subject].to_dict(), truth(s.appeals, subject, window, today),
                          f"redis {subject} {window}")
    appeal = next(a for a in s.appeals if a.fate == "overdue")
    row = s.redis.hgetall(f"{s.prefix}appeal:{appeal.appeal_id}")
    assert row[b"sla"] == b"breached" and row[b"municipality"] == (appeal.muni or "").encode()
    members = {m.decode() for m in s.redis.zrange(f"{s.prefix}breaches:open", 0, -1)}
    assert members == {a.appeal_id for a in s.appeals if a.fate == "overdue"}
    # The per-authority sets hold the same appeals, each under the body that holds it.
    for auth in {a.auth for a in s.appeals}:
        own = {m.decode() for m in s.redis.zrange(f"{s.prefix}breaches:open:{auth}", 0, -1)}
        assert own == {a.appeal_id for a in s.appeals
                       if a.fate == "overdue" and a.auth == auth}, auth


def test_late_answer_updates_the_day_it_belongs_to(scenario: Scenario) -> None:
    """An answer dated three days ago, arriving now: that day's bucket changes, not today's."""
    s = scenario
    target = _late_target(s)
    before_today = read_figures(s.redis, s.prefix, s.settings.partitions,
                                day_of(int(time.time())), "1d")
    target.answer = s.now - 3 * DAY
    produce(s.settings, [(t.LIFECYCLE, target.appeal_id, _answer(target, target.answer))])
    wait_for(s.prefix, s.redis, s.settings.partitions, s.appeals, timeout=60)
    today = day_of(int(time.time()))
    for window in WINDOW_NAMES:
        figs = read_figures(s.redis, s.prefix, s.settings.partitions, today, window, "any")
        for subject in target.subjects:
            check_figures(figs[subject].to_dict(), truth(s.appeals, subject, window, today),
                          f"after late event {subject} {window}")
    after_today = read_figures(s.redis, s.prefix, s.settings.partitions, today, "1d")
    assert after_today[target.auth].answered == before_today[target.auth].answered


def test_api_matches_the_truth(scenario: Scenario) -> None:
    s = scenario
    time.sleep(1.5)  # one rating refresh after the late event
    today = day_of(int(time.time()))
    for window in ("1d", "7d", "30d"):
        for auth in PLAN:
            status, body = http_json(f"{s.api_url}/v1/authorities/{auth}/stats?window={window}")
            assert status == 200
            check_figures(body["figures"], truth(s.appeals, auth, window, today),
                          f"api {auth} {window}")
        for path, subject in (("categories/roads", "cat:roads"),
                              ("municipalities/biysk", "muni:biysk")):
            status, body = http_json(f"{s.api_url}/v1/{path}/stats?window={window}")
            check_figures(body["figures"], truth(s.appeals, subject, window, today),
                          f"api {subject} {window}")

    for window in ("7d", "30d"):
        now_figs = {a: truth(s.appeals, a, window, today) for a in PLAN}
        status, body = http_json(f"{s.api_url}/v1/ratings?region=22&window={window}")
        assert status == 200 and body["min_volume"] == MIN_VOLUME
        entries = {e["authority_id"]: e for e in body["entries"]}
        for auth in PLAN:
            assert entries[auth]["score"] == expected_score(now_figs, auth), (auth, window)
        rated = sorted((a for a in PLAN if expected_score(now_figs, a) is not None),
                       key=lambda a: -(expected_score(now_figs, a) or 0))
        assert [e["authority_id"] for e in body["entries"] if e["rated"]] == rated
        assert entries["22-mincifry"]["rated"] is False  # below the minimum volume
        zset = s.redis.zrange(f"{s.settings.app_id}:rating:22:{window}", 0, -1, withscores=True)
        assert {m.decode(): sc for m, sc in zset} == {
            a: entries[a]["score"] for a in rated}
    # change since last week, 30-day window (breach days are certain to be in both windows)
    week_ago = today - dt.timedelta(days=7)
    past = {a: truth(s.appeals, a, "30d", week_ago) for a in PLAN}
    _, body = http_json(f"{s.api_url}/v1/ratings?region=22&window=30d")
    for e in body["entries"]:
        if e["authority_id"] in PLAN:
            assert e["previous_score"] == expected_score(past, e["authority_id"], past=True)

    for auth in PLAN:
        status, body = http_json(f"{s.api_url}/v1/breaches?authority={auth}")
        overdue = [a for a in s.appeals if a.auth == auth and a.fate == "overdue"]
        assert body["total"] == len(overdue)
        assert {b["appeal_id"] for b in body["breaches"]} == {a.appeal_id for a in overdue}
        assert all(b["overdue_s"] > 10 * DAY for b in body["breaches"])
        lates = [b["overdue_s"] for b in body["breaches"]]
        assert lates == sorted(lates, reverse=True)  # most overdue first

    expect_sla = {"on_time": "met", "late": "breached_late", "overdue": "breached",
                  "open": "running"}
    for fate, sla in expect_sla.items():
        a = next(x for x in s.appeals if (x.fate == fate and x.answer is None) or
                 (x.fate == fate and fate in ("on_time", "late")))
        status, body = http_json(f"{s.api_url}/v1/appeals/{a.appeal_id}")
        assert status == 200 and body["sla_status"] == sla, (fate, body)
        assert body["authority"]["id"] == a.auth and body["category"] == a.category
        assert set(body) <= {"appeal_id", "status", "sla_status", "regime", "category",
                             "municipality", "authority", "registered_at", "due_at",
                             "answered_at", "updated_at", "overdue_s", "open_breach",
                             "stages", "duplicate_of", "history"}
        # The 59-FZ redirect stage (README "Stage deadlines"): 7 days from registration,
        # settled by the answer, never breached by its deadline alone.
        [stage] = body["stages"]
        tz = ZoneInfo("Asia/Barnaul")
        policy = load_book(load_rules().authorities.values()).resolve(
            "fz59", region="22", authority=a.auth, category=a.category)
        want_due = redirect_due(dt.datetime.fromtimestamp(a.reg, tz), "Asia/Barnaul", policy)
        assert stage["stage"] == "redirect" and stage["breached"] is False, (fate, stage)
        assert dt.datetime.fromisoformat(stage["due_at"]) == want_due.replace(microsecond=0)
        # The answer settles it (a later redirect would still be judged by the 7 days).
        assert stage["ended_at"] is None, (fate, stage)
        assert (stage["settled_at"] is None) == (body["answered_at"] is None), (fate, stage)
    assert http_json(f"{s.api_url}/v1/appeals/fz59-nobody")[0] == 404
    assert http_json(f"{s.api_url}/v1/authorities/22-minzdrav/stats?window=5d")[0] == 400
    assert http_json(f"{s.api_url}/openapi.json")[1]["openapi"] == "3.1.0"

    scrape = http_text(f"{s.api_url}/metrics")
    share = truth(s.appeals, "22-minsoc", "30d", today)["on_time_share"]
    line = next(x for x in scrape.splitlines()
                if x.startswith('appeals_on_time_ratio{authority="22-minsoc",window="30d"}'))
    assert float(line.split()[-1]) == pytest.approx(share)


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    if os.environ.get("APPEALS_SKIP_SYSTEM_TOOLS") == "1":
        pytest.skip(f"{tool} missing and APPEALS_SKIP_SYSTEM_TOOLS=1")
    pytest.fail(f"`{tool}` is not installed: `apt-get install -y {package}` (or run "
                "tests/system-deps.sh as root), or set APPEALS_SKIP_SYSTEM_TOOLS=1 to skip.",
                pytrace=False)


def test_supervisor_page_in_headless_chromium(scenario: Scenario, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or _require("chromium", "chromium")
    driver_path = _require("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"{scenario.api_url}/?region=22&window=30d")
        assert "Алтайский край" in driver.find_element(By.TAG_NAME, "h1").text
        rows = driver.find_elements(By.CSS_SELECTOR, "#rating tbody tr[data-authority]")
        page_rows = [(r.get_attribute("data-authority"),
                      r.find_element(By.CSS_SELECTOR, "td.rank").text,
                      r.find_element(By.CSS_SELECTOR, "td.score").text,
                      r.find_element(By.CSS_SELECTOR, "td.on-time").text) for r in rows]
        _, api = http_json(f"{scenario.api_url}/v1/ratings?region=22&window=30d")
        api_rows = [(e["authority_id"], str(e["rank"]), f"{e['score']:.1f}",
                     f"{e['figures']['on_time_share'] * 100:.1f}%")
                    for e in api["entries"] if e["rated"]]
        assert page_rows == api_rows and len(page_rows) == 2
        unrated = {r.get_attribute("data-authority") for r in
                   driver.find_elements(By.CSS_SELECTOR, "#unrated tbody tr[data-authority]")}
        assert "22-mincifry" in unrated
        _, breaches = http_json(f"{scenario.api_url}/v1/breaches?region=22")
        assert driver.find_element(By.ID, "breach-total").text == str(breaches["total"])
        shown = [r.get_attribute("data-appeal") for r in
                 driver.find_elements(By.CSS_SELECTOR, "#breaches tbody tr[data-appeal]")]
        assert shown == [b["appeal_id"] for b in breaches["breaches"]]
        refresh = driver.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
        assert int(refresh.get_attribute("content") or 0) > 0
    finally:
        driver.quit()


def test_promtool_check_metrics_on_real_scrapes(scenario: Scenario) -> None:
    promtool = _require("promtool", "prometheus")
    for url in (f"http://127.0.0.1:{scenario.worker_metrics}/metrics",
                f"{scenario.api_url}/metrics"):
        text = http_text(url)
        assert "appeals_" in text
        proc = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                              capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0, f"{url}:\n{proc.stdout}\n{proc.stderr}"


def test_worker_measures_its_event_loop(scenario: Scenario) -> None:
    """The loop probe runs in a real worker and keeps running: a sample every 0.1 s."""
    from prometheus_client.parser import text_string_to_metric_families

    def probe() -> dict[str, float]:
        text = http_text(f"http://127.0.0.1:{scenario.worker_metrics}/metrics")
        family = next(f for f in text_string_to_metric_families(text)
                      if f.name == "appeals_event_loop_lag_seconds")
        return {s.name + s.labels.get("le", ""): s.value for s in family.samples}

    first = probe()
    assert first["appeals_event_loop_lag_seconds_count"] >= 5
    time.sleep(1.0)
    again = probe()
    # Still sampling (10 a second when the loop is free; at least 5 on a busy machine).
    assert again["appeals_event_loop_lag_seconds_count"] >= \
        first["appeals_event_loop_lag_seconds_count"] + 5
    assert again["appeals_event_loop_lag_seconds_bucket+Inf"] == \
        again["appeals_event_loop_lag_seconds_count"]


def test_worker_measures_its_waits_for_broker_acknowledgements(scenario: Scenario) -> None:
    """Every stage that sent outputs observed how long the broker took to acknowledge them."""
    from prometheus_client.parser import text_string_to_metric_families

    text = http_text(f"http://127.0.0.1:{scenario.worker_metrics}/metrics")
    family = next(f for f in text_string_to_metric_families(text)
                  if f.name == "appeals_broker_ack_wait_seconds")
    counts = {s.labels["stage"]: s.value for s in family.samples if s.name.endswith("_count")}
    # The scenario's routed appeals and lifecycle events were tracked by the SLA agent.
    assert counts.get("sla", 0) >= 1, counts
    assert set(counts) <= {"intake", "triage", "sla", "sla_sweep", "notify"}, counts


def test_replay_from_the_start_gives_the_same_figures(scenario: Scenario) -> None:
    """A fresh application id (new consumer group, new changelog, new Redis prefix) reads the
    same topics from the beginning and must publish exactly the same counters and sketches."""
    s = scenario
    stop_process(s.worker)
    replay = s.settings.replace(app_id=f"{s.settings.app_id}-replay")
    worker = start_worker(replay, free_port(), LOG_DIR / f"worker-{replay.app_id}.log")
    try:
        wait_for(f"{replay.app_id}:", s.redis, replay.partitions, s.appeals)
        time.sleep(2.5)  # one more publish period: everything settled
        first = _raw_figures(s.redis, s.prefix, s.settings.partitions)
        again = _raw_figures(s.redis, f"{replay.app_id}:", replay.partitions)
        assert again == first
    finally:
        stop_process(worker)


def _raw_figures(client: redis_sync.Redis, prefix: str, partitions: int
                 ) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    counters: dict[str, int] = {}
    sketches: dict[str, dict[str, int]] = {}
    for p in range(partitions):
        for k, v in client.hgetall(f"{prefix}agg:{p}").items():
            counters[k.decode()] = counters.get(k.decode(), 0) + int(v)
        for k, v in client.hgetall(f"{prefix}aggsk:{p}").items():
            bins = sketches.setdefault(k.decode(), {})
            for b, n in json.loads(v).items():
                bins[b] = bins.get(b, 0) + n
    return counters, sketches
