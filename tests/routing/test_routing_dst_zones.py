"""A zone with daylight saving time is no zone of a Russian body (routing fixes, D5).

The check took the UTC offset at one January instant: Europe/Zaporozhye and Europe/Kiev (Kyiv
time, UTC+2 in winter) passed the UTC+2..+12 range, and the SLA counted the body's working
hours an hour off all summer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.routing import RulesError, load_rules

MINIMAL = """\
region: "54"
triage: 54-cur
authorities:
  - id: 54-government
    name: Правительство Новосибирской области
    kind: government
  - id: 54-cur
    name: ЦУР Новосибирской области
    kind: triage
    parent: 54-government
    timezone: {tz}
"""


def load(tmp_path: Path, tz: str) -> None:
    path = tmp_path / "54.yaml"
    path.write_text(MINIMAL.format(tz=tz), encoding="utf-8")
    load_rules(path)


@pytest.mark.parametrize("tz", ["Europe/Zaporozhye", "Europe/Kiev", "Europe/Kyiv",
                                "Europe/Helsinki", "Asia/Beirut"])
def test_a_zone_with_daylight_saving_time_is_refused(tmp_path: Path, tz: str) -> None:
    with pytest.raises(RulesError) as exc:
        load(tmp_path, tz)
    [(_, path, message)] = exc.value.problems
    assert path == "authorities[1](54-cur).timezone"
    assert message.startswith(f"{tz!r}: keeps daylight saving time (UTC+02:00 in January, "
                              "UTC+03:00 in July)")
    assert "'Europe/Moscow'" in message


@pytest.mark.parametrize("tz", ["Europe/Moscow", "Europe/Kaliningrad", "Europe/Simferopol",
                                "Asia/Barnaul", "Asia/Kamchatka"])
def test_russian_zones_still_load(tmp_path: Path, tz: str) -> None:
    load(tmp_path, tz)
