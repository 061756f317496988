"""Fixtures handing the SLA agent's tests a stand-in runtime (see ``sla_support.py``).

Most tests of the agent's per-event handling need the same runtime: an SLA clock long after
every event they send (so none is refused as stamped ahead of it), rules that can be made to
fail on demand, and usually the appeal already routed. Built here once, so that what "the
appeal is routed and running" means is the same in every file.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.sla.sla_support import NOW, fixed_clock, overflowing_rules, route, stand_in_runtime
from workers.sla.engine import State


@pytest.fixture
def rt() -> SimpleNamespace:
    """The agent's runtime at ``sla_support.NOW`` with ``overflowing_rules()``, nothing stored."""
    return stand_in_runtime(clock=fixed_clock(NOW.timestamp()), rules=overflowing_rules())


@pytest.fixture
def routed_state(rt: SimpleNamespace) -> State:
    """The state of the appeal of ``sla_support.routed_record()``, routed in ``rt`` (and
    running there)."""
    return route(rt)
