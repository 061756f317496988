"""Every agent of a worker uses one policy book, and a reload of the routing rules changes it
for all of them at once.

The SLA agent rebuilt its book when the rules watcher swapped the rules (reading an edited
policy file again), while route kept the policy subcategories and intake the 59-FZ
registration stage read at start. A subcategory an edited policy file selected then had its
deadline in the SLA agent, but route dropped it from the routed record as unknown, so the
SLA agent never saw it; and intake registered 59-FZ letters by the old stage.
"""

from __future__ import annotations

import datetime as dt
import os
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams.settings import Settings
from tests.intake.fakes import AgentHarness
from workers.deadlines.policies import POLICY_FILE_ENV
from workers.route import agent as route_agent
from workers.routing import Router, load_rules
from workers.sla import agent as sla_agent
from workers.sla.deadline_service import DeadlineService, policy_book, rules_book

RULES = (Path(__file__).resolve().parents[2] / "workers/routing/data/22-altai-krai.yaml"
         ).read_text(encoding="utf-8")
PACKAGED = resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
EDIT = ('\n[[overrides]]\nsubcategory = "lifts_test"\nwarning_share = 0.5\n'
        '\n[[overrides]]\nregime = "fz59"\nregion = "22"\nshift = "next"\n')
BARNAUL = dt.timezone(dt.timedelta(hours=7))


def _letter(number: str) -> bytes:
    # Received Wed 4 Mar 2026: the 3-day registration stage ends on Sat 7 Mar, which the
    # packaged fz59 shift moves back to Fri 6 Mar, and a region's "next" to Tue 10 Mar.
    return orjson.dumps({
        "channel": "fz59", "source": "letter", "reg_number": number,
        "received_at": "2026-03-04T10:00:00+07:00", "region": "22", "addressee": "Минстрой",
        "applicant": {"surname": "Тестов", "name": "Тест"}, "subject": "Дорога",
        "body": "Прошу отремонтировать дорогу на улице"})


def _sla_runtime(router: Router) -> Any:
    settings = Settings.load({})
    service = DeadlineService(policy_book(router.rules))
    return SimpleNamespace(router=router, rules_of=router.rules,
                           ctx=SimpleNamespace(settings=settings),
                           rules=service.rules(settings.warning_share,
                                               settings.escalation_after))


def _edit_policies_and_reload(policies: Path, rules_dir: Path, router: Router) -> None:
    before = policies.stat().st_mtime_ns
    policies.write_text(PACKAGED + EDIT, "utf-8")
    os.utime(policies, ns=(before + 10**9, before + 10**9))  # a later version of the file
    (rules_dir / "22.yaml").write_text(RULES + "\n# edited\n", encoding="utf-8")
    router.swap(load_rules(rules_dir))  # what the rules watcher does


@pytest.fixture()
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Router]:
    policies = tmp_path / "policies.toml"
    policies.write_text(PACKAGED, "utf-8")
    monkeypatch.setenv(POLICY_FILE_ENV, str(policies))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "22.yaml").write_text(RULES, encoding="utf-8")
    return policies, rules_dir, Router(load_rules(rules_dir))


def test_route_follows_the_sla_agent_s_policies_on_a_reload(
        setup: tuple[Path, Path, Router]) -> None:
    policies, rules_dir, router = setup
    rt = _sla_runtime(router)
    assert route_agent.routed_subcategory("lifts_test", router.rules) is None

    _edit_policies_and_reload(policies, rules_dir, router)
    sla_agent.SlaRuntime.refresh_rules(rt)
    assert rt.rules_of is router.rules
    state = {"regime": "pos", "region": "22", "auth": "22-urb", "cat": "housing_utilities",
             "sub": "lifts_test", "tz": "Asia/Barnaul"}
    assert rt.rules.params(state).warning_share == 0.5  # the SLA agent has the new book
    assert route_agent.routed_subcategory("lifts_test", router.rules) == "lifts_test"
    assert policy_book(router.rules) is rules_book(router.rules)[0]


def test_intake_follows_a_reload_between_two_batches(setup: tuple[Path, Path, Router]) -> None:
    policies, rules_dir, router = setup
    reads = 0

    class Harness(AgentHarness):
        @property  # type: ignore[override]
        def now(self) -> dt.datetime:
            nonlocal reads
            reads += 1
            if reads == 2:  # the second batch: the rules were reloaded meanwhile
                _edit_policies_and_reload(policies, rules_dir, router)
            return dt.datetime(2026, 3, 20, 10, tzinfo=BARNAUL)

        @now.setter
        def now(self, value: dt.datetime) -> None:
            pass

    h = Harness(router=router)
    h.run(h.batch("fz59", [_letter("1-1/26")]), h.batch("fz59", [_letter("1-2/26")]))
    assert h.crashes == [] and h.deadletters() == []
    assert [orjson.loads(v)["registered_at"] for _, _, v in h.registered()] == [
        "2026-03-06T05:00:00.000+00:00", "2026-03-10T05:00:00.000+00:00"]


def test_a_book_that_cannot_be_built_keeps_the_one_before_for_every_agent(
        setup: tuple[Path, Path, Router]) -> None:
    policies, rules_dir, router = setup
    rt = _sla_runtime(router)
    book = policy_book(router.rules)
    sla_rules_before = rt.rules
    policies.write_text("regimes = 1\n", "utf-8")
    before = policies.stat().st_mtime_ns
    os.utime(policies, ns=(before + 10**9, before + 10**9))
    (rules_dir / "22.yaml").write_text(RULES + "\n# edited\n", encoding="utf-8")
    router.swap(load_rules(rules_dir))
    assert rules_book(router.rules) == (book, False)
    sla_agent.SlaRuntime.refresh_rules(rt)
    assert rt.rules is sla_rules_before and rt.rules_of is router.rules


def _edit_policies(policies: Path, text: str) -> None:
    before = policies.stat().st_mtime_ns
    policies.write_text(text, "utf-8")
    os.utime(policies, ns=(before + 10**9, before + 10**9))  # a later version of the file


def test_a_recompute_puts_every_agent_on_the_edited_policy_file(
        setup: tuple[Path, Path, Router], monkeypatch: pytest.MonkeyPatch) -> None:
    """`appeals sla recompute` re-read the policy file into a book of the SLA agent's own:
    route kept the shared book and dropped the subcategory the edited file added."""
    from workers.sla import recompute

    monkeypatch.setattr("workers.sla.deadline_service.SETTLE_S", 0.0)  # edited just now
    policies, _rules_dir, router = setup
    rt = _sla_runtime(router)
    _edit_policies(policies, PACKAGED + EDIT)
    recompute.reload_rules(rt)
    state = {"regime": "pos", "region": "22", "auth": "22-urb", "cat": "housing_utilities",
             "sub": "lifts_test", "tz": "Asia/Barnaul"}
    assert rt.rules.params(state).warning_share == 0.5
    assert route_agent.routed_subcategory("lifts_test", router.rules) == "lifts_test"
    assert rt.book_of is policy_book(router.rules)


def test_an_edited_policy_file_reaches_every_agent_with_the_watcher_s_reload(
        setup: tuple[Path, Path, Router]) -> None:
    """The rules watcher watches the policy file too: once the edit has settled it loads new
    rules, whose book every agent takes at its next batch (and not before: the file on disk
    is not looked at per batch, see test_policy_file_settling)."""
    import asyncio

    from workers.routing import RulesWatcher

    policies, rules_dir, router = setup
    rt = _sla_runtime(router)
    watcher = RulesWatcher(rules_dir, router.swap, initial=router.rules)
    sla_agent.SlaRuntime.refresh_rules(rt)
    assert route_agent.routed_subcategory("lifts_test", router.rules) is None
    asyncio.run(watcher.check())
    _edit_policies(policies, PACKAGED + EDIT)
    assert not asyncio.run(watcher.check())  # changed since the last poll: maybe mid-save
    sla_agent.SlaRuntime.refresh_rules(rt)
    assert route_agent.routed_subcategory("lifts_test", router.rules) is None
    assert asyncio.run(watcher.check())  # the same on two polls: taken
    sla_agent.SlaRuntime.refresh_rules(rt)
    assert route_agent.routed_subcategory("lifts_test", router.rules) == "lifts_test"
    assert rt.book_of is policy_book(router.rules)
    assert "lifts_test" in rt.book_of.subcategories()


def test_a_worker_started_with_a_broken_policy_file_is_refused(
        setup: tuple[Path, Path, Router]) -> None:
    """Only the process's first book raised: a later worker of the process (new rules, a
    broken file) silently got the earlier rules' book. At a start it raises; only a reload
    keeps the book in use."""
    from workers.deadlines.policies import PolicyError

    policies, rules_dir, router = setup
    policy_book(router.rules)
    _edit_policies(policies, "regimes = 1\n")
    other = Router(load_rules(rules_dir))
    with pytest.raises(PolicyError):
        policy_book(other.rules, reload=False)
    assert rules_book(other.rules)[1] is False  # a reload keeps the book in use
    with pytest.raises(PolicyError):
        policy_book(other.rules, reload=False)  # and a start is still refused
    with pytest.raises(ValueError, match="regimes"):
        from workers.sla.deadline_service import refresh_book
        refresh_book(other.rules, settle=0.0)
