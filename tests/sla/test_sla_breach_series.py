"""The breach counters' series exist at 0 from the SLA worker's start, for every authority of
the routing rules and every regime.

``increase()`` ignores a series' first sample: created at the first breach, a restarted
worker's series began with the whole burst of breaches its sweep emits for the deadlines missed
while it was down, and AppealsAuthorityBreachRateHigh stayed quiet (review of session 16).
"""

from __future__ import annotations

from prometheus_client import generate_latest

from monitoring import metrics
from schemas.records import REGIMES
from workers.routing import load_rules
from workers.sla.agent import create_breach_series


def _exposed() -> str:
    return generate_latest(metrics.REGISTRY).decode()


def test_every_authority_and_regime_has_a_breach_series_at_zero() -> None:
    from workers.deadlines.policies import PolicyBook

    rules = load_rules()
    book = PolicyBook.load()
    create_breach_series(rules, book)
    text = _exposed()
    stages = {(regime, stage) for regime in REGIMES for stage in book.resolve(regime).stages}
    assert ("fz59", "redirect") in stages and ("incident", "final_answer") in stages
    for regime, stage in stages:
        assert (f'appeals_sla_alerts_total{{level="breach",regime="{regime}",stage="{stage}"}}'
                in text), (regime, stage)
    for authority_id in rules.authorities:
        for regime in REGIMES:
            line = (f'appeals_sla_breaches_total{{authority="{authority_id}",'
                    f'regime="{regime}"}}')
            assert line in text, line
    for regime in REGIMES:
        assert (f'appeals_sla_alerts_total{{level="breach",regime="{regime}",stage="answer"}}'
                in text)


def test_a_reload_that_adds_an_authority_creates_its_series() -> None:
    import dataclasses

    rules = load_rules()
    some = next(iter(rules.authorities.values()))
    added = dataclasses.replace(some, id="22-new-body")
    reloaded = dataclasses.replace(rules, authorities={**rules.authorities, added.id: added})
    create_breach_series(reloaded)
    assert 'appeals_sla_breaches_total{authority="22-new-body",regime="pos"} 0.0' in _exposed()
