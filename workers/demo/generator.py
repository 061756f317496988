"""Synthetic appeals and authorities' answers for the demo, the tests and the benchmark.

Texts come from the labelled corpus the classifier ships (real-sounding Russian appeals of every
category and channel style), so the demo exercises classification on realistic input. People
are obviously fictional. A share of messages is deliberately malformed, so the dead-letter path
is always visible. With ``vague_share`` (the demo's), a share of appeals says too little to
classify (the classifier's confidence is below the triage threshold for each of
:data:`VAGUE_TEXTS`), so they go to the human triage queue, where the demo's operator decides
them. Each appeal gets a fate (answered on time, late, never, extended,
redirected, paused) that the generator turns into lifecycle events on the SLA clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson

from schemas.records import CHANNELS
from workers.intake.core import appeal_id_for, regime_for

DAY = 86400.0
# Nominal answer periods on the SLA clock, to plan on-time and late answers around.
#: Regimes whose final answer is a tracked stage after the first response (policies.toml), and
#: that stage's nominal length (7 working days) on the SLA clock.
FINAL_ANSWER_REGIMES = frozenset({"incident", "hotline"})
FINAL_ANSWER_NOMINAL = 9 * DAY
NOMINAL_PERIOD = {"fz59": 30 * DAY, "pos": 14 * DAY, "incident": 1.2 * DAY, "hotline": 1.2 * DAY}
CHANNEL_WEIGHTS = {"pos": 35, "incident": 25, "fz59": 15, "hotline": 12, "email": 6, "web": 7}
MUNICIPALITIES = ("Барнаул", "Бийск", "Рубцовск", "Новоалтайск", "Заринск", "Камень-на-Оби",
                  "Славгород", "Алейск", "Белокуриха", "Яровое")
FIRST_NAMES = ("Иван", "Мария", "Пётр", "Анна", "Сергей", "Ольга", "Алексей", "Наталья")
LAST_NAMES = ("Тестов", "Примерова", "Демонстров", "Образцова", "Вымыслов", "Условная")
STREETS = ("ул. Ленина", "пр. Строителей", "ул. Мира", "ул. Советская", "пр. Ленина",
           "ул. Молодёжная", "ул. Школьная")
FATES = (("on_time", 55), ("late", 15), ("open", 12), ("extended", 6), ("redirected", 5),
         ("paused", 4), ("reopened", 3))
#: Appeals that say too little to classify, with the category the demo's triage operator gives
#: each (as a human would after reading the attachment or calling back). The classifier's
#: confidence for every one is below the default triage threshold (0.45; a test checks it).
VAGUE_TEXTS = (
    ("Прошу разобраться с ситуацией, которая длится уже второй месяц.", "housing_utilities"),
    ("Прошу принять меры. Подробности готов сообщить по телефону.", "roads"),
    ("Когда это всё закончится? Сколько можно терпеть?", "landscaping"),
    ("Жалоба на бездействие. Меры до сих пор не приняты.", "housing_utilities"),
    ("Прошу проверить законность действий и сообщить мне результат.", "social"),
    ("Уважаемые! Ситуация не меняется, прошу вмешаться.", "ecology"),
)
REDIRECT_TARGETS = ("22-minzhkh", "22-mintrans", "22-minzdrav", "22-barnaul-kzhkh")
#: The targets each category's appeals are usually routed to (the demo rules'
#: ``22-altai-krai.yaml``; unmapped categories fall back to the housing ministry). A redirect to
#: the body that holds the appeal is refused (dead-lettered as ``redirect_refused``), so the
#: demo's "not in our competence" picks among the others.
LIKELY_HOLDERS = {
    "housing_utilities": {"22-minzhkh", "22-barnaul-kzhkh"},
    "roads": {"22-mintrans"},
    "transport": {"22-mintrans"},
    "healthcare": {"22-minzdrav"},
}


def redirect_target(category: str, rng: random.Random) -> str:
    """A body to hand the appeal to that is not the one it was most likely routed to."""
    holders = LIKELY_HOLDERS.get(category, {"22-minzhkh"})
    return rng.choice([a for a in REDIRECT_TARGETS if a not in holders])


def load_corpus() -> list[dict[str, Any]]:
    path = resources.files("workers.classification").joinpath("corpus/train.jsonl")
    with path.open("rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


@dataclass
class PlannedEvent:
    at: float  # SLA-clock seconds
    payload: dict[str, Any]

    def moved(self, delta: float) -> PlannedEvent:
        """The same event ``delta`` SLA seconds later (its ``at`` field too): the demo plans
        an appeal's events when it sends the appeal and moves them to the registration."""
        at = self.at + delta
        return PlannedEvent(at, {**self.payload, "at": _stamp(at)})


def _stamp(at: float) -> str:
    """An event's ``at`` field for SLA-clock seconds ``at``."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


@dataclass
class GeneratedAppeal:
    channel: str
    appeal_id: str
    regime: str
    value: bytes
    fate: str
    category: str
    urgent: bool
    personal: tuple[str, ...]  # the personal data it carries (to prove it never leaks)
    vague: bool = False  # one of VAGUE_TEXTS: meant for the triage queue


@dataclass
class Malformed:
    channel: str
    value: bytes
    kind: str


@dataclass
class Generator:
    seed: int = 22
    malformed_share: float = 0.02
    vague_share: float = 0.0
    max_text_length: int = 20_000
    corpus: list[dict[str, Any]] = field(default_factory=load_corpus)
    run_id: str = ""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.counter = 0
        self.serial = 0
        self._channels = list(CHANNEL_WEIGHTS)
        self._weights = list(CHANNEL_WEIGHTS.values())
        self._fates = [f for f, _ in FATES]
        self._fate_weights = [w for _, w in FATES]
        if not self.run_id:
            self.run_id = f"{self.seed}-{self.rng.randrange(16**6):06x}"

    def next(self, now_sla: float) -> GeneratedAppeal | Malformed:
        self.counter += 1
        if self.rng.random() < self.malformed_share:
            return self.malformed()
        return self.appeal(now_sla)

    def appeal(self, now_sla: float, channel: str | None = None) -> GeneratedAppeal:
        rng = self.rng
        self.serial += 1
        channel = channel or rng.choices(self._channels, self._weights)[0]
        vague = self.vague_share > 0 and rng.random() < self.vague_share
        if vague:
            text, category = rng.choice(VAGUE_TEXTS)
            sample: dict[str, Any] = {"text": text, "category": category, "urgent": False}
        else:
            sample = rng.choice(self.corpus)
        external_id = f"demo-{self.run_id}-{self.serial}"
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        phone = f"+7913{rng.randrange(10**7):07d}"
        email = f"citizen{rng.randrange(10**6)}@example.org"
        municipality = rng.choice(MUNICIPALITIES)
        address = f"г. {municipality}, {rng.choice(STREETS)}, д. {rng.randrange(1, 120)}"
        appeal: dict[str, Any] = {
            "schema_version": 1,
            "channel": channel,
            "external_id": external_id,
            "submitted_at": datetime.fromtimestamp(now_sla, UTC).isoformat(timespec="seconds"),
            "region": "22",
            "text": sample["text"],
            "municipality": municipality if rng.random() < 0.7 else None,
            "address": address,
            "author": {"name": name, "phone": phone, "email": email},
        }
        if channel == "incident":
            appeal["importance"] = rng.choice(("normal", "normal", "high"))
            appeal["author"] = {"handle": f"@citizen_{rng.randrange(10**5)}"}
        value = orjson.dumps(appeal)
        fate = rng.choices(self._fates, self._fate_weights)[0]
        return GeneratedAppeal(
            channel=channel,
            appeal_id=appeal_id_for(channel, external_id),
            regime=regime_for(channel),
            value=value,
            fate=fate,
            category=sample["category"],
            urgent=bool(sample.get("urgent")),
            personal=(name, phone, email, address),
            vague=vague,
        )

    def malformed(self) -> Malformed:
        rng = self.rng
        channel = rng.choice(CHANNELS)
        kind = rng.choice(("not_json", "wrong_type", "missing_field", "unknown_channel",
                           "oversize_text"))
        good = {"schema_version": 1, "channel": channel, "external_id": f"bad-{self.counter}",
                "submitted_at": "2026-11-25T10:00:00+07:00", "region": "22", "text": "Текст"}
        if kind == "not_json":
            value = b"{not json at all"
        elif kind == "wrong_type":
            value = orjson.dumps({**good, "region": 22})
        elif kind == "missing_field":
            value = orjson.dumps({k: v for k, v in good.items() if k != "text"})
        elif kind == "unknown_channel":
            value = orjson.dumps({**good, "channel": "telegraph"})
        else:
            value = orjson.dumps({**good, "text": "я" * (self.max_text_length + 1)})
        return Malformed(channel, value, kind)

    def plan(self, appeal: GeneratedAppeal, registered_sla: float) -> list[PlannedEvent]:
        """Lifecycle events for an appeal's fate, on the SLA clock."""
        rng = self.rng
        period = NOMINAL_PERIOD[appeal.regime]
        events: list[PlannedEvent] = []
        seq = 0

        def add(at: float, event: str, **extra: Any) -> None:
            nonlocal seq
            seq += 1
            payload = {
                "schema_version": 1,
                "event_id": f"{appeal.appeal_id}:{seq}",
                "appeal_id": appeal.appeal_id,
                "event": event,
                "at": _stamp(at),
                **extra,
            }
            events.append(PlannedEvent(at, payload))

        t0 = registered_sla
        add(t0 + 0.02 * period, "accepted")
        fate = appeal.fate
        if fate == "extended" and appeal.regime != "fz59":
            fate = "on_time"
        if fate == "on_time":
            add(t0 + rng.uniform(0.1, 0.6) * period, "answered")
        elif fate == "late":
            add(t0 + rng.uniform(1.2, 1.5) * period, "answered")
        elif fate == "extended":
            add(t0 + 0.5 * period, "extended", extension_days=30, reason="нужна экспертиза")
            add(t0 + 1.4 * period, "answered")
        elif fate == "redirected":
            target = redirect_target(appeal.category, rng)
            add(t0 + 0.1 * period, "redirected", to_authority_id=target, reason="не по компетенции")
            add(t0 + 0.12 * period, "accepted")  # the receiving body takes it (its own stage)
            add(t0 + 0.1 * period + rng.uniform(0.2, 0.6) * period, "answered")
        elif fate == "paused":
            add(t0 + 0.3 * period, "paused", reason="запрошены сведения у заявителя")
            add(t0 + 0.5 * period, "resumed")
            add(t0 + 0.8 * period, "answered")
        elif fate == "reopened":
            add(t0 + 0.3 * period, "answered")
            add(t0 + 0.4 * period, "reopened", reason="низкая оценка ответа")
            add(t0 + 0.7 * period, "answered")
        if appeal.regime in FINAL_ANSWER_REGIMES and events[-1].payload["event"] == "answered":
            # The first response is the `answer`; the incident (or call) is closed with its final
            # answer later, mostly within the final-answer stage, sometimes after it.
            late = rng.random() < 0.1
            add(events[-1].at + (FINAL_ANSWER_NOMINAL * rng.uniform(1.1, 1.3) if late
                                 else rng.uniform(0.5, 2.0) * period), "closed")
        return events


def triage_decision(appeal_id: str, category: str, at: float, n: int) -> PlannedEvent:
    """The demo operator's decision for an appeal in the triage queue (a ``triaged`` event)."""
    return PlannedEvent(at, {
        "schema_version": 1, "event_id": f"{appeal_id}:triage:{n}", "appeal_id": appeal_id,
        "event": "triaged", "at": _stamp(at),
        "category": category,
    })


def lifecycle_bytes(event: PlannedEvent) -> bytes:
    return orjson.dumps(event.payload)
