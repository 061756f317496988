"""Property: routing never raises and always names a defined authority."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.records import CATEGORIES
from workers.routing import RouteInput, Router, RoutingRules
from workers.routing.loader import PACKAGED_DATA, load_rules

_RULES: RoutingRules = load_rules(PACKAGED_DATA)
_ROUTER = Router(_RULES)
_PLACES = ["Бийске", "Барнаул", "Камне-на-Оби", "Яровое", "р-н", "г.", "Бийского района", ""]

text = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from([*_PLACES, "яма", "нет воды", "🙂", "\n", "-"])).map(" ".join),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    category=st.sampled_from(CATEGORIES),
    subcategory=st.one_of(st.none(), st.sampled_from(["stray_dogs", "overhaul", "x"])),
    region=st.one_of(st.sampled_from(["22", "022", "77", ""]), st.text(max_size=4)),
    municipality=st.one_of(st.none(), text, st.sampled_from(["barnaul", "01701000"])),
    body=text,
    address=st.one_of(st.none(), text),
    complaint=st.one_of(st.none(), st.sampled_from(sorted(_RULES.authorities)), st.text()),
)
def test_route_never_raises(
    category: str,
    subcategory: str | None,
    region: str,
    municipality: str | None,
    body: str,
    address: str | None,
    complaint: str | None,
) -> None:
    appeal = RouteInput(
        "p-1", region, category, subcategory, municipality, body, address, complaint
    )
    decision = _ROUTER.route(appeal)
    assert decision.authority_id in _RULES.authorities
    assert decision.authority_id != complaint
    assert decision.rule_version == _RULES.version
