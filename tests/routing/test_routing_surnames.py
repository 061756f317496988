"""A surname equal to a town adjective is no place (routing fixes, D2).

«Мой сосед Каменский завалил весь двор снегом» went to the administration of Камень-на-Оби:
a capitalised adjective with no noun it qualifies counted as weak evidence of the town even
with no preposition before it, where Russian names a place («в Каменском», «возле Алейской»).
"""

from __future__ import annotations

import pytest

from workers.routing import RouteInput, Router


@pytest.mark.parametrize("text", [
    "Мой сосед Каменский завалил весь двор снегом",
    "Участковый Каменский не реагирует, во дворе сломана площадка",
    "Учитель Алейская унижает детей в школе",
    "врач Рубцовская нагрубила",
    "гражданин Заринский просит разобраться",
    "Каменский завалил двор снегом",
    "Прошу наказать соседа Бийского",
])
def test_a_surname_like_a_town_adjective_is_no_place(router: Router, text: str) -> None:
    decision = router.route(RouteInput("a", "22", "landscaping", text=text))
    assert decision.municipality is None


@pytest.mark.parametrize(("text", "expected"), [
    # A preposition or a noun it qualifies keeps it a place.
    ("в Каменском третий день нет воды", "kamen-na-obi"),
    ("Возле Алейской нет воды", "aleysk"),
    ("Заринская администрация не отвечает", "zarinsk"),
    ("Рубцовская горбольница отправила на МРТ", "rubtsovsk"),
    # A body named in quotes by its town (from the classifier corpus).
    ("Начальнику МО МВД России «Славгородский». Жильцы просят принять меры", "slavgorod"),
    # The surname does not hide a town named after it.
    ("Мой сосед Каменский завалил двор снегом, г. Бийск", "biysk"),
])
def test_a_town_adjective_with_a_preposition_or_noun_is_still_a_place(
    router: Router, text: str, expected: str
) -> None:
    decision = router.route(RouteInput("a", "22", "landscaping", text=text))
    assert decision.municipality == expected
