"""Catalogue of the federal subjects of the Russian Federation.

Why this exists: deadlines are counted in the *region's* local time (DESIGN.md §2) and
routing rules are keyed by region code, so every worker needs one authoritative, cheap
lookup ``region code -> name, IANA time zone``. The data lives in ``regions.csv`` next to
this module (editable without touching code) and is parsed once, on first use.

Code scheme. The canonical codes are the two-digit subject codes of the vehicle plates
(ГИБДД): "22" Altai Krai, "77" Moscow. For 01-79, 83, 86, 87, 89 and 92 they are also the
subject codes of the tax service (ФНС), which the address registers КЛАДР, ФИАС and ГАР use;
for the subjects added since 2014 the two differ, and the catalogue's codes are the plate ones:
Crimea 82 (ФНС 91), the DNR 80 (ФНС 93), the LNR 81 (ФНС 94), Kherson Oblast 84 (ФНС 95),
Zaporozhye Oblast 85 (ФНС 90); Sevastopol is 92 in both. They are not ОКАТО codes (there Altai
Krai is 01). The 89 subjects are listed as the Russian Federation lists them. The time zone is
the zone of the subject's capital.

Accepted input forms for a code (normalised by :func:`normalize_code`):

* ``22``, ``"22"``, ``"022"``, ``" 22 "`` and ``"4"``/``"04"`` -> canonical ``"22"``/``"04"``
  (leading zeros are insignificant: no real code starts with 0 beyond the padding);
* the codes in the ``aliases`` column: extra plate codes (``"122"`` -> ``"22"``, ``"777"`` ->
  ``"77"``...) and the ФНС codes of the five subjects above (``"91"`` -> ``"82"``, ``"93"``
  -> ``"80"``, ``"94"`` -> ``"81"``, ``"95"`` -> ``"84"``, ``"90"`` -> ``"85"``). They are
  accepted as input only; the canonical code is what :class:`Region` carries and what we emit.

Where the two schemes collide the ФНС code wins: region codes in intake data come from address
registers (ГАР/ФИАС, ФНС codes), so 90, 93 and 95 are Zaporozhye Oblast, the DNR and Kherson
Oblast, no longer the extra plate codes of Moscow Oblast, Krasnodar Krai and Chechnya (a plate's
region is no address). 99, a Moscow plate code, is Baikonur in the ФНС list, no subject: it
stays Moscow.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "Region",
    "UnknownRegion",
    "all_regions",
    "get_region",
    "normalize_code",
    "region_timezone",
]

_DATA_FILE = "regions.csv"


@dataclass(frozen=True, slots=True)
class Region:
    """One federal subject. Immutable so it can be shared freely between tasks."""

    code: str
    """Canonical two-digit code, e.g. ``"22"``."""
    name_ru: str
    name_en: str
    timezone: str
    """IANA zone of the capital, e.g. ``"Asia/Barnaul"``."""


class UnknownRegion(KeyError):
    """Raised for a code that names no federal subject.

    A ``KeyError`` subclass so callers treating the catalogue as a mapping keep working.
    """

    def __init__(self, code: object) -> None:
        self.code = code
        super().__init__(code)

    def __str__(self) -> str:  # KeyError's default str() would just repr the key
        return (
            f"unknown Russian region code {self.code!r}: expected a federal subject code "
            f"such as '22' (Altai Krai) or '77' (Moscow), see workers/geo/{_DATA_FILE}"
        )


class _Catalogue:
    """Parsed CSV: canonical list plus an index from every accepted code to its Region."""

    __slots__ = ("by_code", "regions")

    def __init__(self, regions: list[Region], by_code: dict[str, Region]) -> None:
        self.regions = regions
        self.by_code = by_code


_lock = threading.Lock()
_catalogue: _Catalogue | None = None


def _load() -> _Catalogue:
    """Parse the CSV once (thread-safe); validate it so a bad edit fails loudly at startup."""
    global _catalogue
    if _catalogue is not None:
        return _catalogue
    with _lock:
        if _catalogue is not None:
            return _catalogue
        text = resources.files(__package__).joinpath(_DATA_FILE).read_text(encoding="utf-8")
        regions: list[Region] = []
        by_code: dict[str, Region] = {}
        for lineno, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            code = (row.get("code") or "").strip()
            if not (len(code) == 2 and code.isdigit()):
                raise ValueError(f"{_DATA_FILE}:{lineno}: code must be two digits, got {code!r}")
            region = Region(
                code=code,
                name_ru=row["name_ru"].strip(),
                name_en=row["name_en"].strip(),
                timezone=row["timezone"].strip(),
            )
            keys = [code, *(row.get("aliases") or "").split()]
            for key in keys:
                key = key.lstrip("0") or "0"
                if key in by_code:
                    raise ValueError(f"{_DATA_FILE}:{lineno}: duplicate code or alias {key!r}")
                by_code[key] = region
            regions.append(region)
        _catalogue = _Catalogue(regions, by_code)
        return _catalogue


def normalize_code(code: str | int) -> str:
    """Return the canonical two-digit code for any accepted form, or raise UnknownRegion."""
    return get_region(code).code


def get_region(code: str | int) -> Region:
    """Look a subject up by code (``22``, ``"22"``, ``"022"`` or a plate alias like ``"122"``)."""
    if isinstance(code, bool):  # bool is an int subclass; True must not mean region 01
        raise UnknownRegion(code)
    if isinstance(code, int):
        key = str(code) if code >= 0 else ""
    elif isinstance(code, str):
        key = code.strip()
    else:
        raise UnknownRegion(code)
    if not key.isdigit() or not key.isascii():
        raise UnknownRegion(code)
    region = _load().by_code.get(key.lstrip("0") or "0")
    if region is None:
        raise UnknownRegion(code)
    return region


def region_timezone(code: str | int) -> str:
    """IANA time zone of the subject's capital, e.g. ``region_timezone("22") == "Asia/Barnaul"``."""
    return get_region(code).timezone


#: The zone a region this host's catalogue does not know is timed in.
FALLBACK_TIMEZONE = "Europe/Moscow"


def region_timezone_or_moscow(code: str | int) -> str:
    """:func:`region_timezone`, or Moscow's for a code the catalogue does not know: the one
    fallback the SLA agent, its figures and intake's registration day all take."""
    try:
        return region_timezone(code)
    except KeyError:  # UnknownRegion
        return FALLBACK_TIMEZONE


def all_regions() -> list[Region]:
    """All 89 subjects in code order (a fresh list; the Region objects are shared)."""
    return list(_load().regions)
