"""A complaint about the regional government, the root of the chain, is recorded as such
(routing fixes, D1).

It goes to the triage desk, which was recorded as ``complaint_parent``: false, the desk is
below the government. The level ``complaint_root`` says why the desk has it (to forward it
outside the region or return it under 59-FZ art. 8 p. 6).
"""

from __future__ import annotations

from workers.routing import RouteInput, Router


def test_route_and_triage_desk_record_a_complaint_about_the_root(router: Router) -> None:
    for about in ("22-government", "Правительство Алтайского края"):
        appeal = RouteInput("a", "22", "roads", text="яма в Бийске", complaint_about=about)
        for decision in (router.route(appeal), router.triage_desk(appeal)):
            assert (decision.authority_id, decision.level, decision.complaint_about) == (
                "22-cur", "complaint_root", "22-government")
            assert decision.municipality == "biysk"


def test_a_complaint_about_a_body_with_a_parent_is_still_complaint_parent(
    router: Router
) -> None:
    appeal = RouteInput("a", "22", "roads", complaint_about="22-mintrans")
    assert router.route(appeal).level == "complaint_parent"
    assert router.route(RouteInput("a", "22", "other", complaint_about="22-cur")).level == (
        "complaint_parent")
