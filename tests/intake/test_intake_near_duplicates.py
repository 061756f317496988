"""Near-duplicate flagging against a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.records import Author, RegisteredAppeal, SourcePosition
from workers.intake.near_duplicates import (
    NearDupConfig,
    find_near_duplicate,
    find_near_duplicates,
    jaccard,
    remember,
    remember_many,
    signature,
    signatures,
    sketch,
    sketches,
)

TEXT = ("Третий день в квартире нет отопления, батареи холодные, температура 14 градусов. "
        "Управляющая компания на звонки не отвечает. Прошу принять меры.")
RESEND = ("Третий день в квартире нет отопления, батареи холодные, температура 14 градусов! "
          "Управляющая компания на звонки не отвечает. Прошу срочно принять меры.")
OTHER = "Во дворе не горят фонари уже месяц, вечером очень темно, дети ходят в темноте."


def _appeal(appeal_id: str, *, text: str = TEXT, phone: str | None = "+79130001101",
            email: str | None = None, address: str | None = "г. Барнаул, ул. Вымышленная, 17",
            at: str = "2025-01-14T08:00:00+07:00", duplicate_of: str | None = None
            ) -> RegisteredAppeal:
    return RegisteredAppeal(
        appeal_id=appeal_id, channel="pos", external_id=appeal_id, regime="pos", region="22",
        registered_at=at, submitted_at=at, text=text, address=address,
        author=Author(name="Тестова Алевтина", phone=phone, email=email),
        duplicate_of=duplicate_of, source=SourcePosition("appeals.intake.pos", 0, 0),
    )


def _run(redis_url: str, fn: Any) -> Any:
    async def main() -> Any:
        client = aioredis.from_url(redis_url)
        try:
            return await fn(client)
        finally:
            await client.aclose()
    return asyncio.run(main())


def _cfg() -> NearDupConfig:
    return NearDupConfig(key_prefix=f"t{uuid.uuid4().hex[:8]}:")


def test_similarity_estimate() -> None:
    assert jaccard(sketch(TEXT), sketch(TEXT)) == 1.0
    assert jaccard(sketch(TEXT), sketch(RESEND)) >= 0.8
    assert jaccard(sketch(TEXT), sketch(OTHER)) < 0.2
    long_a = TEXT * 10 + " дополнительно"
    assert jaccard(sketch(long_a), sketch(TEXT * 10)) >= 0.8


_TEXTS = st.lists(
    st.one_of(
        st.text(max_size=300),
        st.sampled_from(["", "  ", "!!!", "Ёж", "abcd", "abcde", "газ!", "🔥🔥🔥 ГАЗ 🔥",
                         TEXT, OTHER, TEXT * 3]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(texts=_TEXTS, size=st.sampled_from([4, 128]), shingle=st.sampled_from([3, 5]),
       chunk=st.sampled_from([1, 7, 200, 1 << 18]))
def test_batch_sketches_equal_one_by_one(texts: list[str], size: int, shingle: int,
                                         chunk: int) -> None:
    """The batch path hashes runs of texts as one array (at most ``chunk`` code points, and at
    least one text, per run); no window may cross two texts, and no text may be skipped."""
    assert sketches(texts, size, shingle, chunk) == [sketch(t, size, shingle) for t in texts]


def test_batch_signatures_equal_one_by_one() -> None:
    cfg = _cfg()
    batch = [_appeal("a1"), _appeal("a2", text=RESEND, phone=None), _appeal("a3", text=OTHER),
             _appeal("a4", phone=None, address=None), _appeal("a5", text="")]
    assert signatures(batch, cfg) == [signature(a, cfg) for a in batch]
    assert signatures(batch, cfg)[3].sketch == ()  # no identity: nothing to compare, no sketch
    assert signatures([], cfg) == []


def test_resend_within_a_day_is_flagged(redis_server: Any) -> None:
    cfg = _cfg()

    async def scenario(r: aioredis.Redis) -> tuple:
        first = _appeal("a" * 24)
        assert await find_near_duplicate(r, first, config=cfg) is None
        await remember(r, first, config=cfg)
        resend = _appeal("b" * 24, text=RESEND, at="2025-01-14T20:00:00+07:00")
        found = await find_near_duplicate(r, resend, config=cfg)
        # different address, other text, other author, too late: not flagged
        elsewhere = _appeal("c" * 24, text=RESEND, address="г. Бийск, ул. Придуманная, 5")
        other_text = _appeal("d" * 24, text=OTHER)
        other_author = _appeal("e" * 24, text=RESEND, phone="+79130009999")
        too_late = _appeal("f" * 24, text=RESEND, at="2025-01-15T08:00:01+07:00")
        replay = first
        return (found, await find_near_duplicate(r, elsewhere, config=cfg),
                await find_near_duplicate(r, other_text, config=cfg),
                await find_near_duplicate(r, other_author, config=cfg),
                await find_near_duplicate(r, too_late, config=cfg),
                await find_near_duplicate(r, replay, config=cfg))

    found, elsewhere, other_text, other_author, too_late, replay = _run(redis_server.url,
                                                                        scenario)
    assert found == "a" * 24
    assert (elsewhere, other_text, other_author, too_late, replay) == (None,) * 5


def test_address_spelling_and_any_shared_identifier_match(redis_server: Any) -> None:
    cfg = _cfg()

    async def scenario(r: aioredis.Redis) -> str | None:
        await remember(r, _appeal("1" * 24, email="a.testova@example.ru",
                                  address="г. Барнаул, улица Вымышленная, дом 17"), config=cfg)
        later = _appeal("2" * 24, phone=None, email="a.testova@example.ru",
                        address="Г. БАРНАУЛ, УЛ. ВЫМЫШЛЕННАЯ, Д. 17",
                        at="2025-01-14T09:00:00+07:00")
        return await find_near_duplicate(r, later, config=cfg)

    assert _run(redis_server.url, scenario) == "1" * 24


def test_chain_points_at_the_original_and_batch_sees_itself(redis_server: Any) -> None:
    cfg = _cfg()

    async def scenario(r: aioredis.Redis) -> list:
        batch = [
            _appeal("0" * 23 + "1", at="2025-01-14T08:00:00+07:00"),
            _appeal("0" * 23 + "2", text=RESEND, at="2025-01-14T09:00:00+07:00"),
            _appeal("0" * 23 + "3", text=OTHER, at="2025-01-14T09:30:00+07:00"),
        ]
        flags = await find_near_duplicates(r, batch, config=cfg)
        for appeal, flag in zip(batch, flags, strict=True):
            appeal.duplicate_of = flag
        await remember_many(r, batch, config=cfg)
        third = _appeal("0" * 23 + "4", text=RESEND + " Ещё раз.", at="2025-01-14T10:00:00+07:00")
        return [*flags, await find_near_duplicate(r, third, config=cfg)]

    flags = _run(redis_server.url, scenario)
    assert flags == [None, "0" * 23 + "1", None, "0" * 23 + "1"]


def test_redis_keys_and_values_hold_no_personal_data(redis_server: Any) -> None:
    cfg = _cfg()

    async def scenario(r: aioredis.Redis) -> list[tuple[bytes, dict]]:
        await remember(r, _appeal("9" * 24, email="secret.person@example.ru"), config=cfg)
        keys = [k async for k in r.scan_iter(match=f"{cfg.key_prefix}*")]
        return [(k, await r.hgetall(k)) for k in keys]

    stored = _run(redis_server.url, scenario)
    assert len(stored) == 2  # one bucket per identifier (phone, e-mail)
    blob = repr(stored).lower()
    for secret in ("79130001101", "secret.person", "вымышленная", "тестова",
                   "отопления".encode().hex()):
        assert secret not in blob
    ttl = _run(redis_server.url, lambda r: r.ttl(stored[0][0]))
    assert 0 < ttl <= 86_400 + 3600


def test_no_author_means_no_flag(redis_server: Any) -> None:
    cfg = _cfg()

    async def scenario(r: aioredis.Redis) -> str | None:
        anon = _appeal("7" * 24, phone=None)
        anon.author = None
        await remember(r, anon, config=cfg)
        anon2 = _appeal("8" * 24, phone=None)
        anon2.author = None
        return await find_near_duplicate(r, anon2, config=cfg)

    assert _run(redis_server.url, scenario) is None


# --- review 12: identities, address spellings, order of arrival ------------------------------

def _incident(appeal_id: str, handle: str, network: str | None) -> RegisteredAppeal:
    return RegisteredAppeal(
        appeal_id=appeal_id, channel="incident", external_id=appeal_id, regime="incident",
        region="22", registered_at="2025-01-14T08:00:00+07:00",
        submitted_at="2025-01-14T08:00:00+07:00", text=TEXT,
        author=Author(handle=handle), extra={} if network is None else {"network": network},
        source=SourcePosition("appeals.intake.incident", 0, 0),
    )


def test_a_handle_is_an_identity_only_within_its_network() -> None:
    """@ivanov on VK and @Ivanov on Telegram are two people (defect 9)."""
    cfg = NearDupConfig()
    vk = signature(_incident("v" * 24, "@ivanov", "vk"), cfg)
    tg = signature(_incident("g" * 24, "@Ivanov", "telegram"), cfg)
    vk_again = signature(_incident("w" * 24, "Ivanov", "VK"), cfg)
    assert not set(vk.buckets) & set(tg.buckets)
    assert vk.buckets == vk_again.buckets  # case, '@' and the network's spelling don't matter
    unknown = signature(_incident("u" * 24, "@ivanov", None), cfg)
    assert not set(unknown.buckets) & (set(vk.buckets) | set(tg.buckets))


@pytest.mark.parametrize(("first", "second"), [
    ("г. Барнаул, проспект Ленина, д. 5", "г. Барнаул, пр-т Ленина, д. 5"),
    ("г. Барнаул, пр-кт Ленина, 5", "Барнаул, проспект Ленина, дом 5"),
    ("г. Барнаул, б-р Победы, 5", "г. Барнаул, бульвар Победы, 5"),
    ("Барнаул, Ленина 5", "г. Барнаул, ул. Ленина, 5"),
    ("город Барнаул, улица Ленина, дом 5, корп. 2", "Барнаул, Ленина, 5, корпус 2"),
    ("Ростов-на-Дону, пр-д Ленина, 5", "Ростов-на-Дону, проезд Ленина, д. 5"),
    # «дом»/«город» after a number were kept verbatim, apart from «д»/«г» (re-read review)
    ("мкр. 3, д. 12", "мкр. 3, дом 12"),
    ("ул. Ленина, д. 5, г. Бийск", "ул. Ленина, дом 5, город Бийск"),
    ("ул. Ленина, д. 5, город Бийск", "ул. Ленина, д. 5, Бийск"),
])
def test_spellings_of_one_address_are_one_bucket(first: str, second: str) -> None:
    """Abbreviations are matched before hyphens are dropped; «г.», «д.», «ул.» are noise
    (defect 10)."""
    cfg = NearDupConfig()
    one = signature(_appeal("1" * 24, address=first), cfg)
    two = signature(_appeal("2" * 24, address=second), cfg)
    assert one.buckets == two.buckets


@pytest.mark.parametrize(("first", "second"), [
    ("г. Барнаул, ул. Ленина, 5", "г. Барнаул, пр-т Ленина, 5"),
    ("г. Барнаул, ул. Ленина, 5", "г. Барнаул, б-р Ленина, 5"),
    ("г. Барнаул, пр-т Ленина, 5", "г. Барнаул, пр-д Ленина, 5"),
    ("г. Барнаул, ул. Ленина, д. 5", "г. Барнаул, ул. Ленина, д. 5 г"),   # house 5Г
    ("г. Барнаул, ул. Ленина, д. 5", "г. Барнаул, ул. Ленина, д. 5, кв. 3"),
    ("г. Барнаул, ул. Ленина, д. 5, к. 2", "г. Барнаул, ул. Ленина, д. 52"),
    ("г. Барнаул, ул. Ленина, 5", "г. Бийск, ул. Ленина, 5"),
    ("д. Ивановка, ул. Садовая, 5", "Ивановка, ул. Садовая, 5"),  # village: «д.» kept
])
def test_different_addresses_stay_apart(first: str, second: str) -> None:
    cfg = NearDupConfig()
    one = signature(_appeal("1" * 24, address=first), cfg)
    two = signature(_appeal("2" * 24, address=second), cfg)
    assert not set(one.buckets) & set(two.buckets)


def test_resend_written_earlier_but_met_later_is_flagged(redis_server: Any) -> None:
    """An e-mail resend (10:00) is met first, the ПОС message it repeats (09:00, held in
    moderation) later: the one met later is flagged, pointing at the one met first (defect 7)."""
    cfg = _cfg()

    async def scenario(r: aioredis.Redis) -> tuple:
        email = _appeal("e" * 24, text=RESEND, at="2025-01-14T10:00:00+07:00")
        pos = _appeal("p" * 24, at="2025-01-14T09:00:00+07:00")
        first = await find_near_duplicate(r, email, config=cfg)
        await remember(r, email, config=cfg)
        second = await find_near_duplicate(r, pos, config=cfg)
        # Written more than the window before the one met first: not a resend of it.
        stale = _appeal("s" * 24, at="2025-01-13T09:59:59+07:00")
        return first, second, await find_near_duplicate(r, stale, config=cfg)

    assert _run(redis_server.url, scenario) == (None, "e" * 24, None)


def test_a_replay_gets_the_decision_of_the_live_run(redis_server: Any) -> None:
    cfg = _cfg()

    async def scenario(r: aioredis.Redis) -> tuple:
        a = _appeal("a" * 24, at="2025-01-14T10:00:00+07:00")
        b = _appeal("b" * 24, text=RESEND, at="2025-01-14T09:00:00+07:00")
        c = _appeal("c" * 24, text=RESEND, at="2025-01-14T11:00:00+07:00")
        live = []
        for appeal in (a, b, c):
            appeal.duplicate_of = (await find_near_duplicates(r, [appeal], config=cfg))[0]
            await remember_many(r, [appeal], config=cfg)
            live.append(appeal.duplicate_of)
        replayed = [_appeal(x.appeal_id, text=x.text, at=x.submitted_at) for x in (a, b, c)]
        return live, await find_near_duplicates(r, replayed, config=cfg)

    live, replay = _run(redis_server.url, scenario)
    assert replay == live
    # b, written before a but met after it, points at a; so does c (a's group's root).
    assert live == [None, "a" * 24, "a" * 24]


# --------------------------------------------------------------------------- one busy author

_TOPICS = ["яма на дороге у остановки", "не горит фонарь во дворе", "не вывозят мусор",
           "течёт крыша в подъезде", "сломана скамейка на площадке", "нет воды в доме"]


def _busy(i: int, minute: int) -> RegisteredAppeal:
    """Appeal ``i`` of an organisation that writes many distinct appeals from one phone."""
    text = (f"Заявка номер {i * 7919 % 100_003}: {_TOPICS[i % len(_TOPICS)]}, дом {i}, "
            f"подъезд {i % 9}")
    return _appeal(f"{i:024x}", text=text,
                   at=f"2025-01-14T{8 + minute // 60:02d}:{minute % 60:02d}:00+07:00")


def _resend_of(appeal: RegisteredAppeal, appeal_id: str) -> RegisteredAppeal:
    return _appeal(appeal_id, text=appeal.text + " Повторно!", at="2025-01-14T23:00:00+07:00")


def test_a_busy_author_keeps_a_bounded_bucket_and_bounded_comparisons(
        redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One phone at one address sending 150 appeals (an organisation, an operator's number):
    its bucket keeps the ``bucket_max`` with the latest event times, every lookup compares
    against at most that many, a resend of a recent one is flagged, and one of an appeal beyond
    the cap is not (the documented price). Uncapped, the 150th lookup compared 149 texts and
    5,000 such appeals held a worker's event loop for seconds."""
    import dataclasses

    from workers.intake import near_duplicates as nd

    cfg = dataclasses.replace(_cfg(), bucket_max=8)
    compared: list[int] = []
    real = nd._best_match

    def counting(sig: Any, candidates: Any, c: Any) -> Any:
        cands = list(candidates)
        compared.append(len(cands))
        return real(sig, cands, c)

    monkeypatch.setattr(nd, "_best_match", counting)
    appeals = [_busy(i, i) for i in range(150)]

    async def scenario(r: aioredis.Redis) -> tuple[list[str | None], int, list[int], Any]:
        flags: list[str | None] = []
        dropped = 0
        for start in range(0, 120, 10):  # batches of 10, as a worker meets them
            batch = appeals[start:start + 10]
            found = await find_near_duplicates(r, batch, config=cfg)
            flags += found
            for a, f in zip(batch, found, strict=True):
                a.duplicate_of = f
            dropped += await remember_many(r, batch, config=cfg)
        # The last 30 one at a time.
        for a in appeals[120:]:
            a.duplicate_of = await find_near_duplicate(r, a, config=cfg)
            flags.append(a.duplicate_of)
            dropped += await remember_many(r, [a], config=cfg)
        keys = [k async for k in r.scan_iter(match=f"{cfg.key_prefix}nd2:*")]
        sizes = [await r.hlen(k) for k in keys]
        recent = await find_near_duplicate(r, _resend_of(appeals[146], "f" * 24), config=cfg)
        old = await find_near_duplicate(r, _resend_of(appeals[3], "e" * 24), config=cfg)
        return flags, dropped, sizes, (recent, old)

    flags, dropped, sizes, (recent, old) = _run(redis_server.url, scenario)
    assert flags == [None] * 150, "distinct appeals of one author are not duplicates"
    assert sizes == [8]
    assert dropped == 150 - 8
    assert max(compared) <= 8 + 10 and max(compared[-40:]) <= 8
    assert recent == appeals[146].appeal_id
    assert old is None


def test_the_cap_gives_the_same_flags_in_one_batch_and_one_by_one(redis_server: Any) -> None:
    """Within a batch, later appeals see the newest ``bucket_max`` of the earlier ones, as
    they would had each batch held one appeal: a resend of an appeal pushed out is not flagged
    either way, a resend of a kept one is flagged either way."""
    import dataclasses

    cfg_a = dataclasses.replace(_cfg(), bucket_max=5)
    cfg_b = dataclasses.replace(_cfg(), bucket_max=5)

    def stream() -> list[RegisteredAppeal]:
        out = [_busy(i, i) for i in range(12)]
        out.append(_resend_of(out[1], "e" * 24))   # 11 newer ones since: pushed out
        out.append(_resend_of(out[10], "f" * 24))  # kept
        return out

    async def scenario(r: aioredis.Redis) -> tuple[list[str | None], list[str | None]]:
        batch = stream()
        together = await find_near_duplicates(r, batch, config=cfg_a)
        one_by_one: list[str | None] = []
        for a in stream():
            a.duplicate_of = await find_near_duplicate(r, a, config=cfg_b)
            one_by_one.append(a.duplicate_of)
            await remember(r, a, config=cfg_b)
        return together, one_by_one

    together, one_by_one = _run(redis_server.url, scenario)
    assert together == one_by_one
    assert together[-2:] == [None, f"{10:024x}"]


def test_bucket_max_is_validated() -> None:
    assert NearDupConfig.from_env({"APPEALS_NEAR_DUP_BUCKET_MAX": "64"}).bucket_max == 64
    assert NearDupConfig.from_env({}).bucket_max == 32
    for bad in ("0", "-3", "many"):
        with pytest.raises(ValueError, match="APPEALS_NEAR_DUP"):
            NearDupConfig.from_env({"APPEALS_NEAR_DUP_BUCKET_MAX": bad})


def test_a_replayed_batch_gets_the_live_runs_flags_under_the_cap(redis_server: Any) -> None:
    """A replay's own entries replace themselves in the batch's view of a bucket, as HSET
    replaces them in Redis; appending them pushed a real entry out of the cap, and the resend
    in the replayed batch lost its flag (review of session 13)."""
    import dataclasses

    cfg = dataclasses.replace(_cfg(), bucket_max=3)
    other2 = "На остановке сломана скамейка и разбито стекло павильона, просим отремонтировать."

    def batch() -> list[RegisteredAppeal]:
        return [_appeal("a" * 24, text=other2, at="2025-01-14T10:00:00+07:00"),
                _appeal("b" * 24, text=TEXT, at="2025-01-14T02:00:00+07:00"),
                _appeal("c" * 24, text=RESEND, at="2025-01-14T03:00:00+07:00")]

    async def scenario(r: aioredis.Redis) -> tuple[list[str | None], list[str | None]]:
        earlier = _appeal("9" * 24, text=OTHER, at="2025-01-14T05:00:00+07:00")
        await remember_many(r, [earlier], config=cfg)
        live_batch = batch()
        live = await find_near_duplicates(r, live_batch, config=cfg)
        for a, flag in zip(live_batch, live, strict=True):
            a.duplicate_of = flag
        await remember_many(r, live_batch, config=cfg)
        return live, await find_near_duplicates(r, batch(), config=cfg)

    live, replay = _run(redis_server.url, scenario)
    assert live == [None, None, "b" * 24]
    assert replay == live


@pytest.mark.parametrize(("first", "second"), [
    ("Не работает лифт в подъезде 1", "Не работает лифт в подъезде 2"),
    ("Прошу провести проверку УК «Уют» по факту залива квартиры 12",
     "Прошу провести проверку УК «Уют» по факту залива квартиры 45"),
    ("Не работает лифт в подъезде 1", "Не работает лифт в подъезде 1 и 2"),
], ids=["entrance", "flat", "one-more"])
def test_texts_with_other_numbers_are_not_near_duplicates(redis_server: Any, first: str,
                                                          second: str) -> None:
    """Two short appeals of one author at one address that differ only in a number share
    nearly every shingle (Jaccard 0.92) and the second was flagged as a resend of the first,
    though they are two lifts, two flats. The same numbers (written otherwise) still match."""
    assert jaccard(sketch(first), sketch(second)) >= 0.8  # similar enough as texts

    async def scenario(r: aioredis.Redis) -> tuple[str | None, str | None]:
        cfg = _cfg()
        a = _appeal("a" * 24, text=first)
        await remember(r, a, config=cfg)
        other = await find_near_duplicate(
            r, _appeal("b" * 24, text=second, at="2025-01-14T09:00:00+07:00"), config=cfg)
        resend = await find_near_duplicate(
            r, _appeal("c" * 24, text=first.replace(" 1", " 01") + "!",
                       at="2025-01-14T10:00:00+07:00"), config=cfg)
        return other, resend

    assert _run(redis_server.url, scenario) == (None, "a" * 24)


def test_entries_written_before_numbers_counted_are_compared_on_their_text() -> None:
    """An entry of an older worker has no numbers digest: it is compared as before (for one
    window after the upgrade), and an entry with one carries it through Redis."""
    import struct

    from workers.intake import near_duplicates as nd

    sig = signature(_appeal("a" * 24, text="Не работает лифт в подъезде 1"))
    root = sig.root.encode()
    legacy = (struct.pack(">dH", sig.ts, len(root)) + root
              + struct.pack(f">{len(sig.sketch)}Q", *sig.sketch))
    assert nd._unpack(legacy) == (sig.ts, sig.root, sig.sketch, None)
    assert nd._unpack(nd._pack(sig)) == (sig.ts, sig.root, sig.sketch, sig.numbers)
    other = signature(_appeal("b" * 24, text="Не работает лифт в подъезде 2"))
    cfg = NearDupConfig()
    assert nd._best_match(other, [("a" * 24, *nd._unpack(legacy))], cfg) == "a" * 24
    assert nd._best_match(other, [("a" * 24, *nd._unpack(nd._pack(sig)))], cfg) is None
