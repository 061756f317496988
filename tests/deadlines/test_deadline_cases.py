"""Deadline cases worked out by hand from the rules, run through the CLI and the API.

Every expected value below was computed on paper from the production calendar printed by
``holidays.RU(years=...)`` (holidays 0.109) and the counting rules in
``workers/deadlines/compute.py``; the reasoning is in the comment of each case. Never
regenerate these by running the code under test.

Calendar facts used (weekday off = *, working weekend day = W):
  2024: W Sat 27 Apr, 2 Nov, 28 Dec; * 1-5, 8 Jan, 29-30 Apr, 1, 9, 10 May, 12 Jun,
        4 Nov, 30-31 Dec.
  2025: W Sat 1 Nov; * 1-3, 6-8 Jan, 1, 2, 8, 9 May, 12-13 Jun, 3-4 Nov, 31 Dec.
  2026: no working weekend day; * 1, 2, 5-9 Jan, 23 Feb, 9 Mar, 1, 11 May, 12 Jun,
        4 Nov, 31 Dec.
  2027: W Sat 20 Feb; * 1, 4-8 Jan, 22-23 Feb, 8 Mar, 3, 10 May, 14 Jun, 4-5 Nov, 31 Dec.
Zones: 22 Asia/Barnaul +07, 25 Asia/Vladivostok +10, 39 Europe/Kaliningrad +02,
41 Asia/Kamchatka +12, 77 Europe/Moscow +03.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace

import pytest

from workers.deadlines import cli
from workers.deadlines.calendar import ShiftMode
from workers.deadlines.compute import answer_due
from workers.deadlines.policies import PolicyBook
from workers.geo.regions import region_timezone


@dataclass(frozen=True)
class Case:
    name: str
    regime: str
    registered_at: str
    region: str
    expected: str
    shift: ShiftMode | None = None
    working_days: int | None = None
    hours: float | None = None
    urgent: bool = False


CASES = [
    # ---- fz59: 30 calendar days, day after registration = day 1, end of day D+30 ----------
    Case("fz59 tz boundary Barnaul: 20:00Z 10 Mar is 03:00 11 Mar; 11 Mar+30 = Fri 10 Apr",
         "fz59", "2026-03-10T20:00:00Z", "22", "2026-04-10T23:59:59+07:00"),
    Case("fz59 same instant Moscow: 23:00 10 Mar; +30 = Thu 9 Apr",
         "fz59", "2026-03-10T20:00:00Z", "77", "2026-04-09T23:59:59+03:00"),
    Case("fz59 offset input converted: 23:30+03 = 03:30 11 Mar Barnaul -> 10 Apr",
         "fz59", "2026-03-10T23:30:00+03:00", "22", "2026-04-10T23:59:59+07:00"),
    Case("fz59 naive input is region-local: 10 Mar Barnaul -> 9 Apr",
         "fz59", "2026-03-10T23:30", "22", "2026-04-09T23:59:59+07:00"),
    Case("fz59 lands on 31 Dec 2026 (day off), previous -> Wed 30 Dec",
         "fz59", "2026-12-01T10:00", "77", "2026-12-30T23:59:59+03:00"),
    Case("fz59 31 Dec 2026 next: 31 Dec-10 Jan all off -> Mon 11 Jan 2027",
         "fz59", "2026-12-01T10:00", "77", "2027-01-11T23:59:59+03:00", shift="next"),
    Case("fz59 31 Dec 2026 none: stays on the day off",
         "fz59", "2026-12-01T10:00", "77", "2026-12-31T23:59:59+03:00", shift="none"),
    Case("fz59 5 Dec 2025 +30 = Sun 4 Jan 2026; previous over 1-3 Jan, 31 Dec -> Tue 30 Dec",
         "fz59", "2025-12-05T12:00", "77", "2025-12-30T23:59:59+03:00"),
    Case("fz59 Sun 4 Jan 2026 next: 5-9 Jan off, 10-11 weekend -> Mon 12 Jan",
         "fz59", "2025-12-05T12:00", "77", "2026-01-12T23:59:59+03:00", shift="next"),
    Case("fz59 3 Oct 2024 +30 = Sat 2 Nov, a working Saturday: no shift",
         "fz59", "2024-10-03T10:00", "77", "2024-11-02T23:59:59+03:00"),
    Case("fz59 28 Nov 2024 +30 = Sat 28 Dec, working Saturday",
         "fz59", "2024-11-28T10:00", "77", "2024-12-28T23:59:59+03:00"),
    Case("fz59 28 Mar 2024 +30 = Sat 27 Apr, working Saturday",
         "fz59", "2024-03-28T10:00", "77", "2024-04-27T23:59:59+03:00"),
    Case("fz59 29 Mar 2024 +30 = Sun 28 Apr; previous -> working Sat 27 Apr",
         "fz59", "2024-03-29T10:00", "77", "2024-04-27T23:59:59+03:00"),
    Case("fz59 Sun 28 Apr 2024 next: 29 Apr-1 May off -> Thu 2 May",
         "fz59", "2024-03-29T10:00", "77", "2024-05-02T23:59:59+03:00", shift="next"),
    Case("fz59 2 Oct 2025 +30 = Sat 1 Nov 2025, working Saturday",
         "fz59", "2025-10-02T10:00", "77", "2025-11-01T23:59:59+03:00"),
    Case("fz59 5 Oct 2025 +30 = Tue 4 Nov (off); previous: 3 Nov off, 2 Sun -> Sat 1 Nov",
         "fz59", "2025-10-05T10:00", "77", "2025-11-01T23:59:59+03:00"),
    Case("fz59 Tue 4 Nov 2025 next -> Wed 5 Nov",
         "fz59", "2025-10-05T10:00", "77", "2025-11-05T23:59:59+03:00", shift="next"),
    Case("fz59 13 May 2026 +30 = Fri 12 Jun (Russia Day); previous -> Thu 11 Jun",
         "fz59", "2026-05-13T10:00", "77", "2026-06-11T23:59:59+03:00"),
    Case("fz59 12 Jun 2026 next: 13-14 weekend -> Mon 15 Jun",
         "fz59", "2026-05-13T10:00", "77", "2026-06-15T23:59:59+03:00", shift="next"),
    Case("fz59 5 Oct 2026 Barnaul +30 = Wed 4 Nov (Unity Day); previous -> Tue 3 Nov",
         "fz59", "2026-10-05T10:00", "22", "2026-11-03T23:59:59+07:00"),
    Case("fz59 1 Apr 2026 +30 = Fri 1 May; previous -> Thu 30 Apr",
         "fz59", "2026-04-01T10:00", "77", "2026-04-30T23:59:59+03:00"),
    Case("fz59 11 Apr 2026 +30 = Mon 11 May (off); previous over 9-10 weekend -> Fri 8 May",
         "fz59", "2026-04-11T10:00", "77", "2026-05-08T23:59:59+03:00"),
    Case("fz59 Mon 11 May 2026 next -> Tue 12 May",
         "fz59", "2026-04-11T10:00", "77", "2026-05-12T23:59:59+03:00", shift="next"),
    Case("fz59 Kamchatka: 13:00Z 30 Jan is 01:00 31 Jan +12; 31 Jan+30 = Mon 2 Mar",
         "fz59", "2026-01-30T13:00:00Z", "41", "2026-03-02T23:59:59+12:00"),
    Case("fz59 same instant Moscow: 30 Jan +30 = Sun 1 Mar; previous -> Fri 27 Feb",
         "fz59", "2026-01-30T13:00:00Z", "77", "2026-02-27T23:59:59+03:00"),
    Case("fz59 Kaliningrad: 21:30Z is 23:30 10 Mar +02 -> Thu 9 Apr",
         "fz59", "2026-03-10T21:30:00Z", "39", "2026-04-09T23:59:59+02:00"),
    Case("fz59 same instant Moscow: 00:30 11 Mar -> Fri 10 Apr",
         "fz59", "2026-03-10T21:30:00Z", "77", "2026-04-10T23:59:59+03:00"),
    Case("fz59 leap year: 30 Jan 2024 +30 = Thu 29 Feb",
         "fz59", "2024-01-30T10:00", "77", "2024-02-29T23:59:59+03:00"),
    Case("fz59 across year end: 20 Dec 2026 +30 = Tue 19 Jan 2027",
         "fz59", "2026-12-20T10:00", "77", "2027-01-19T23:59:59+03:00"),
    Case("fz59 7 Dec 2026 +30 = Wed 6 Jan 2027; previous over 1-5 Jan, 31 Dec -> 30 Dec",
         "fz59", "2026-12-07T10:00", "77", "2026-12-30T23:59:59+03:00"),
    Case("fz59 21 Jan 2027 +30 = Sat 20 Feb 2027, working Saturday",
         "fz59", "2027-01-21T10:00", "77", "2027-02-20T23:59:59+03:00"),
    Case("fz59 23 Jan 2027 +30 = Mon 22 Feb (off); previous: Sun 21 -> working Sat 20 Feb",
         "fz59", "2027-01-23T10:00", "77", "2027-02-20T23:59:59+03:00"),
    Case("fz59 Mon 22 Feb 2027 next: 23 Feb off -> Wed 24 Feb",
         "fz59", "2027-01-23T10:00", "77", "2027-02-24T23:59:59+03:00", shift="next"),
    # ---- pos: N working days from the day after registration, end of the N-th -------------
    Case("pos 10 wd from Thu 30 Apr 2026: 4-8 May (5), 11 May off, 12-15 (9), Mon 18 May",
         "pos", "2026-04-30T10:00", "77", "2026-05-18T23:59:59+03:00"),
    Case("pos shift has no effect on a working-day result",
         "pos", "2026-04-30T10:00", "77", "2026-05-18T23:59:59+03:00", shift="previous"),
    Case("pos 10 wd from Fri 20 Dec 2024: 23-28 Dec incl. working Sat (6), 9,10,13,14 Jan",
         "pos", "2024-12-20T15:00", "77", "2025-01-14T23:59:59+03:00"),
    Case("pos 8 wd from Mon 28 Apr 2025: 29,30 Apr, 5,6,7 May, 12,13,14 May",
         "pos", "2025-04-28T09:00", "77", "2025-05-14T23:59:59+03:00", working_days=8),
    Case("pos registered on Sat 3 Jan 2026: first working day 12 Jan, 10th is Fri 23 Jan",
         "pos", "2026-01-03T12:00", "77", "2026-01-23T23:59:59+03:00"),
    Case("pos 6 wd from Fri 25 Oct 2024: 28-31 Oct, 1 Nov, working Sat 2 Nov",
         "pos", "2024-10-25T10:00", "77", "2024-11-02T23:59:59+03:00", working_days=6),
    Case("pos tz Barnaul: 18:30Z 10 Jun is 11 Jun local; 12 Jun off; 10th wd Fri 26 Jun",
         "pos", "2026-06-10T18:30:00Z", "22", "2026-06-26T23:59:59+07:00"),
    Case("pos same instant Moscow: 10 Jun local; 11 Jun is day 1; 10th wd Thu 25 Jun",
         "pos", "2026-06-10T18:30:00Z", "77", "2026-06-25T23:59:59+03:00"),
    Case("pos 10 wd from Wed 8 May 2024: 9,10 May off; 13-17, 20-24 May",
         "pos", "2024-05-08T10:00", "77", "2024-05-24T23:59:59+03:00"),
    # ---- incident: working hours 09:00-18:00 local on working days ------------------------
    Case("incident 8 h from Tue 10:00 ends at 18:00 the same day",
         "incident", "2026-03-10T10:00", "77", "2026-03-10T18:00:00+03:00"),
    Case("incident 8 h from Tue 17:00: 1 h + 7 h Wed -> 16:00",
         "incident", "2026-03-10T17:00", "77", "2026-03-11T16:00:00+03:00"),
    Case("incident urgent 4 h from Tue 17:00: 1 h + 3 h -> Wed 12:00",
         "incident", "2026-03-10T17:00", "77", "2026-03-11T12:00:00+03:00", urgent=True),
    Case("incident Fri 20:00 6 Mar 2026: weekend, Mon 9 Mar off -> Tue 09:00+8 h",
         "incident", "2026-03-06T20:00", "77", "2026-03-10T17:00:00+03:00"),
    Case("incident urgent before opening 07:30 -> 09:00 + 4 h",
         "incident", "2026-03-11T07:30", "77", "2026-03-11T13:00:00+03:00", urgent=True),
    Case("incident tz Barnaul: 20:00Z is 03:00 11 Mar local -> 09:00 + 8 h",
         "incident", "2026-03-10T20:00:00Z", "22", "2026-03-11T17:00:00+07:00"),
    Case("incident Fri 26 Apr 2024 15:00: 3 h, then working Sat 27 Apr 09:00 + 5 h",
         "incident", "2024-04-26T15:00", "77", "2024-04-27T14:00:00+03:00"),
    Case("incident Tue 30 Dec 2025 16:30: 1.5 h; 31 Dec-11 Jan off; Mon 12 Jan 09:00+6.5 h",
         "incident", "2025-12-30T16:30", "77", "2026-01-12T15:30:00+03:00"),
    Case("incident --hours 1 from 17:30: 0.5 h + 0.5 h next morning",
         "incident", "2026-03-10T17:30", "77", "2026-03-11T09:30:00+03:00", hours=1),
    Case("incident --hours wins over --urgent",
         "incident", "2026-03-10T10:00", "77", "2026-03-10T12:00:00+03:00", hours=2,
         urgent=True),
    Case("incident registered exactly at closing 18:00 starts next opening",
         "incident", "2026-03-10T18:00", "77", "2026-03-11T13:00:00+03:00", urgent=True),
    Case("incident 9 h from 09:00 ends at closing 18:00, not next morning",
         "incident", "2026-03-10T09:00", "77", "2026-03-10T18:00:00+03:00", hours=9),
    Case("incident Vladivostok: 23:00Z 11 Jun is 09:00 12 Jun (holiday); Mon 15 Jun 17:00",
         "incident", "2026-06-11T23:00:00Z", "25", "2026-06-15T17:00:00+10:00"),
    Case("incident urgent Fri 30 Apr 2027 17:00: the day before 1 May closes at 17:00 "
         "(art. 95); 1-3 May off; Tue 4 May 13:00",
         "incident", "2027-04-30T17:00", "77", "2027-05-04T13:00:00+03:00", urgent=True),
    Case("incident Thu 30 Apr 2026 16:00: 1 h to the shortened day's 17:00; Mon 4 May 16:00",
         "incident", "2026-04-30T16:00", "77", "2026-05-04T16:00:00+03:00"),
    Case("incident working Sat 1 Nov 2025 16:00: 1 h to 17:00 (worked for Mon 3 Nov, the day "
         "before 4 Nov, so shortened); 2 Sun, 3-4 off; Wed 5 Nov 16:00",
         "incident", "2025-11-01T16:00", "77", "2025-11-05T16:00:00+03:00"),
    Case("incident working Sat 1 Nov 2025 17:00: the shortened day has closed; Wed 5 Nov "
         "09:00 + 8 h = 17:00",
         "incident", "2025-11-01T17:00", "77", "2025-11-05T17:00:00+03:00"),
    Case("incident working Sat 20 Feb 2027 17:30 (shortened, worked for Mon 22 Feb): closed; "
         "21 Sun, 22-23 off; Wed 24 Feb 17:00",
         "incident", "2027-02-20T17:30", "77", "2027-02-24T17:00:00+03:00"),
    Case("incident working Sat 20 Feb 2027 13:00: 4 h to 17:00; Wed 24 Feb 09:00 + 4 h",
         "incident", "2027-02-20T13:00", "77", "2027-02-24T13:00:00+03:00"),
    Case("incident shift option is irrelevant to working hours",
         "incident", "2026-03-10T17:00", "77", "2026-03-11T16:00:00+03:00", shift="previous"),
    # ---- hotline default: 8 working hours (documented choice) -----------------------------
    Case("hotline default 8 working hours from Fri 15:00 -> Mon 14:00",
         "hotline", "2026-03-13T15:00", "77", "2026-03-16T14:00:00+03:00"),
]

assert len(CASES) >= 40


def _argv(case: Case) -> list[str]:
    argv = ["sla", "due", "--regime", case.regime, "--registered-at", case.registered_at,
            "--region", case.region]
    if case.shift:
        argv += ["--shift", case.shift]
    if case.working_days is not None:
        argv += ["--working-days", str(case.working_days)]
    if case.hours is not None:
        argv += ["--hours", str(case.hours)]
    if case.urgent:
        argv.append("--urgent")
    return argv


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_due(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(_argv(case)) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "exactly one JSON object on one line"
    assert json.loads(out)["due"] == case.expected


BOOK = PolicyBook.load()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_api_due(case: Case) -> None:
    tz = region_timezone(case.region)
    raw = case.registered_at.replace("Z", "+00:00")
    registered = dt.datetime.fromisoformat(raw)
    if registered.tzinfo is None:
        from zoneinfo import ZoneInfo

        registered = registered.replace(tzinfo=ZoneInfo(tz))
    policy = BOOK.resolve(case.regime, region=case.region)
    if case.shift:
        policy = replace(policy, shift=case.shift)
    if case.working_days is not None:
        policy = replace(policy, answer=case.working_days)
    if case.hours is not None:
        policy = replace(policy, answer=case.hours, urgent_answer=None)
    due = answer_due(case.regime, registered, tz, policy, urgent=case.urgent)
    assert due.isoformat() == case.expected
    assert str(due.tzinfo) == tz
