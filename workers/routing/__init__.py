"""Routing of classified appeals to authorities (issue 4, routing half).

Rules are data (``data/*.yaml``, one file per region; ``$APPEALS_ROUTING_RULES`` points
elsewhere), validated on load and hot-reloaded by :class:`RulesWatcher`. See
:mod:`workers.routing.router` for the resolution order and the complaint rule.
"""

from workers.routing.loader import ENV_VAR, RulesError, default_rules_path, load_rules
from workers.routing.model import (
    Authority,
    CategoryRoute,
    Municipality,
    RegionRules,
    RouteDecision,
    RouteInput,
    RoutingRules,
    Supervisor,
    UnknownAuthority,
)
from workers.routing.router import RedirectRejected, Router
from workers.routing.watcher import RulesWatcher

__all__ = [
    "ENV_VAR",
    "Authority",
    "CategoryRoute",
    "Municipality",
    "RedirectRejected",
    "RegionRules",
    "RouteDecision",
    "RouteInput",
    "Router",
    "RoutingRules",
    "RulesError",
    "RulesWatcher",
    "Supervisor",
    "UnknownAuthority",
    "default_rules_path",
    "load_rules",
]
