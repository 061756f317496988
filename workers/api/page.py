"""The supervisor page: server-rendered HTML, no build step, no script needed to read it.

Why server-rendered with ``string.Template``: the page is a table that duty officers leave open
on a wall screen; a meta refresh reloads it, so there is no client state to go stale and nothing
to build. Every value that comes from data (names, ids, categories) goes through
:func:`html.escape`, and the template itself has no ``$`` placeholders inside attributes
that are not escaped the same way. Stable ``id``/``data-*`` attributes exist for the browser
test and for anyone scraping the page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from string import Template
from typing import Any

from workers.aggregates.rating import RatingEntry
from workers.api.service import OpenBreach

REFRESH_SECONDS = 15

_PAGE = Template("""<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="$refresh">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Рейтинг органов власти — регион $region</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .3rem .5rem; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f2f2f2; } td.name, th.name { text-align: left; }
.up { color: #17803d; } .down { color: #b3261e; } .muted { color: #777; }
nav a { margin-right: .8rem; } nav a.current { font-weight: bold; }
</style>
</head>
<body>
<h1>Рейтинг органов власти: $region_name</h1>
<p class="muted">Окно: <span id="window">$window</span>;
расчёт: <span id="computed-at">$computed_at</span>;
в рейтинге — органы с объёмом не менее <span id="min-volume">$min_volume</span>
(ответы + просроченные без ответа: открытые, закрытые и перенаправленные).
Страница обновляется каждые $refresh с.</p>
<nav>$nav</nav>
<table id="rating">
<thead><tr><th>Место</th><th class="name">Орган</th><th>Балл</th><th>За неделю</th>
<th>Объём</th><th>В срок</th><th>Медиана</th><th>P90</th><th>Открыто</th>
<th>Просрочено</th><th>Нарушения</th></tr></thead>
<tbody>
$rating_rows
</tbody>
</table>
<h2>Без рейтинга (малый объём)</h2>
<table id="unrated">
<thead><tr><th class="name">Орган</th><th>Объём</th><th>В срок</th><th>Открыто</th>
<th>Просрочено</th></tr></thead>
<tbody>
$unrated_rows
</tbody>
</table>
<h2>Открытые нарушения сроков (<span id="breach-total">$breach_total</span>$breach_more)</h2>
<table id="breaches">
<thead><tr><th class="name">Обращение</th><th class="name">Орган</th>
<th class="name">Категория</th><th>Срок</th><th>Просрочка</th></tr></thead>
<tbody>
$breach_rows
</tbody>
</table>
</body>
</html>
""")


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def duration(seconds: float | None) -> str:
    """Hours under two days, days above: how supervisors speak about deadlines."""
    if seconds is None:
        return "—"
    hours = seconds / 3600.0
    if hours < 48:
        return f"{hours:.1f} ч"
    return f"{hours / 24:.1f} дн"


def share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _trend(entry: RatingEntry) -> str:
    trend = entry.trend
    if trend is None:
        return '<span class="muted">—</span>'
    if trend > 0:
        return f'<span class="up">▲ {trend:+.1f}</span>'
    if trend < 0:
        return f'<span class="down">▼ {trend:+.1f}</span>'
    return "= 0.0"


def _rating_row(entry: RatingEntry, name: str) -> str:
    f = entry.figures
    return (
        f'<tr data-authority="{e(entry.authority_id)}" data-score="{e(entry.score)}" '
        f'data-rank="{e(entry.rank)}" data-on-time-share="{e(f.on_time_share)}">'
        f'<td class="rank">{e(entry.rank)}</td>'
        f'<td class="name" title="{e(entry.authority_id)}">{e(name)}</td>'
        f'<td class="score">{entry.score:.1f}</td>'
        f'<td class="trend">{_trend(entry)}</td>'
        f'<td class="volume">{entry.volume}</td>'
        f'<td class="on-time">{e(share(f.on_time_share))}</td>'
        f'<td class="median">{e(duration(f.median_response_s))}</td>'
        f'<td class="p90">{e(duration(f.p90_response_s))}</td>'
        f'<td class="open">{f.open}</td>'
        f'<td class="overdue">{f.open_overdue}</td>'
        f'<td class="breaches">{f.breaches}</td></tr>'
    )


def _unrated_row(entry: RatingEntry, name: str) -> str:
    f = entry.figures
    return (
        f'<tr data-authority="{e(entry.authority_id)}">'
        f'<td class="name" title="{e(entry.authority_id)}">{e(name)}</td>'
        f'<td class="volume">{entry.volume}</td>'
        f'<td class="on-time">{e(share(f.on_time_share))}</td>'
        f'<td class="open">{f.open}</td><td class="overdue">{f.open_overdue}</td></tr>'
    )


def _breach_row(b: OpenBreach, name: str) -> str:
    return (
        f'<tr data-appeal="{e(b.appeal_id)}" data-overdue-s="{b.overdue_s:.0f}">'
        f'<td class="name">{e(b.appeal_id)}</td>'
        f'<td class="name" title="{e(b.authority_id)}">{e(name)}</td>'
        f'<td class="name">{e(b.category or "—")}</td>'
        f'<td>{e(b.due_at)}</td><td class="late">{e(duration(b.overdue_s))}</td></tr>'
    )


def render(*, region: str, region_name: str, window: str, windows: Sequence[str],
           computed_at: str, min_volume: int, entries: Sequence[RatingEntry],
           names: Mapping[str, str], breaches: Sequence[OpenBreach], breach_total: int,
           breach_truncated: bool = False, refresh: int = REFRESH_SECONDS) -> str:
    """The page. ``breach_truncated``: the count stopped at the scan limit, so the total is
    a lower bound and the page says so instead of passing it off as exact."""
    rated = [x for x in entries if x.rated]
    unrated = [x for x in entries if not x.rated]
    nav = " ".join(
        f'<a href="?region={e(region)}&amp;window={e(w)}"'
        f'{" class=" + chr(34) + "current" + chr(34) if w == window else ""}>{e(w)}</a>'
        for w in windows
    )
    empty = '<tr><td colspan="11" class="muted name">нет данных</td></tr>'
    return _PAGE.substitute(
        refresh=int(refresh),
        region=e(region),
        region_name=e(region_name),
        window=e(window),
        computed_at=e(computed_at),
        min_volume=int(min_volume),
        nav=nav,
        rating_rows="\n".join(_rating_row(x, names.get(x.authority_id, x.authority_id))
                              for x in rated) or empty,
        unrated_rows="\n".join(_unrated_row(x, names.get(x.authority_id, x.authority_id))
                               for x in unrated) or empty,
        breach_total=int(breach_total),
        breach_more=(' <span id="breach-truncated" class="muted">и более: подсчёт '
                     'остановлен на пределе</span>' if breach_truncated else ""),
        breach_rows="\n".join(_breach_row(b, names.get(b.authority_id, b.authority_id))
                              for b in breaches) or empty,
    )
