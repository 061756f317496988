"""The routed record carries a subcategory only when it is a code the routing rules or the SLA
policies know (review finding D4).

A source's subcategory is free text: the ПОС sends its subcategory's name, a form whatever was
typed. "Отопление +79137770011" reached appeals.routed and, as ``sub``, the SLA state's
changelog, while README and routed-appeal.v1.json say routed carries no personal data.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from streams import topics as t
from tests.route.test_route_fields import letter, registered, router  # noqa: F401  (fixture)
from tests.route.test_route_importance import classify_and_route
from workers.deadlines.policies import POLICY_FILE_ENV
from workers.route import agent as A
from workers.routing import Router

FREE_TEXT = "Отопление +79137770011"


def appeal(subcategory: str | None) -> dict[str, Any]:
    return registered(letter(), subcategory=subcategory)


def test_free_text_does_not_reach_the_routed_record(router: Router) -> None:  # noqa: F811
    out = classify_and_route(router, [appeal(FREE_TEXT)], urgent=False, confidence=0.99)
    [routed] = out.on(t.ROUTED)
    assert routed["subcategory"] is None
    assert "79137770011" not in str(out.sent)


def test_a_rules_code_is_carried_and_still_routes(router: Router) -> None:  # noqa: F811
    a = appeal("overhaul")
    decision = router.route(A.route_input(a, "housing_utilities"))
    assert (decision.authority_id, decision.level) == ("22-fond-kr", "region_category")
    record = A.routed_record(a, decision, "housing_utilities", False, 0.9, "test",
                             rules=router.rules)
    assert record.subcategory == "overhaul"


def test_a_policy_selector_is_carried(router: Router,  # noqa: F811
                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The ПОС sends names: a policy override may select one (its answer period), so a name
    the policy file names is a known code and reaches the SLA agent."""
    policies = tmp_path / "policies.toml"
    policies.write_text(
        resources.files("workers.deadlines").joinpath("policies.toml").read_text("utf-8")
        + '\n[[overrides]]\nsubcategory = "Отопление"\nwarning_share = 0.5\n', "utf-8")
    monkeypatch.setenv(POLICY_FILE_ENV, str(policies))
    a = appeal("Отопление")
    decision = router.route(A.route_input(a, "housing_utilities"))
    record = A.routed_record(a, decision, "housing_utilities", False, 0.9, "test",
                             rules=router.rules)
    assert record.subcategory == "Отопление"
    assert A.routed_record(appeal(FREE_TEXT), decision, "housing_utilities", False, 0.9,
                           "test", rules=router.rules).subcategory is None
