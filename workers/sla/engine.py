"""The SLA state machine of one appeal, as pure functions over a plain dict.

Why pure: the Faust agent, the recompute command, the benchmark and the tests all drive the same
transitions, and a transition's effects (alerts to emit, timers to set) come back as data, so the
agent can send them and await acknowledgement before the input offset is committed.

Why a dict: the state is the value of a changelog-backed Faust table; a dict goes through orjson
to the changelog with no mapping layer. Times are Unix seconds on the SLA clock.

Idempotency, which is what makes replays after a crash harmless:
- a ``routed`` event for an appeal that already has state changes nothing;
- a lifecycle event whose ``event_id`` was applied before changes nothing;
- a timer tick carries the ``cycle`` it was set in; any deadline change bumps the cycle, so old
  ticks are recognised as stale; an alert already recorded for (level, cycle) is not re-emitted.

Stage deadlines (DESIGN.md §2: the fz59 redirect within 7 days, the incident's and hotline's
final answer) run beside the answer clock, each in ``state["stg"]`` as ``[name, start, due,
warn, k, ended, breach timer, settled]``: own timers (kind ``"<name>.<level>"``, cycle ``k``),
own alerts (``"<name>.<level>:<k>"`` in ``alerts``), completed by the lifecycle events its
policy names (``SlaRules.stages``; a breach when late), settled by others (no timers any more,
but a later completion is still checked against the deadline: a body that accepted an appeal
and redirects it on day 9 redirected it late) and ended by closing the appeal. Pauses and
extensions move the answer deadline only. An entry is never changed in place (a state copy
shares the inner lists): it is replaced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from schemas.validation import parse_datetime

State = dict[str, Any]

OPEN_STATUSES = frozenset({"running", "paused"})
#: Event ids one appeal remembers (the newest). More than the events an appeal can apply
#: within :data:`MAX_HISTORY`: 65 periods, each accepted, extended, answered and closed, plus
#: 64 reopens, redirects or pauses and their resumes come to under 400. Only events that
#: change nothing (acceptances repeated, refused events) can push older ids out, and an
#: answer stamped before the running period is refused in any case (:func:`_answered`). With
#: 64, a resend of a long appeal's whole log re-applied its oldest events (its first answer
#: answered the period running now; ``tests/sla/test_sla_event_memory.py``). Only such
#: appeals hold long lists.
MAX_EVENT_IDS = 512
#: Resumes kept while their pause has not arrived yet (:func:`_resumed`); one more is refused
#: (:data:`EARLY_RESUME_OVERFLOW`).
MAX_EARLY_RESUMES = 8
#: Outcome (and dead-letter reason) of a resume of a running appeal that already keeps
#: :data:`MAX_EARLY_RESUMES` resumes for pauses that have not arrived. The oldest kept one used
#: to be dropped for it without a trace: its id stayed remembered (a resend was a duplicate) and
#: the pause it would have ended, when it came, held the appeal with no deadline. Refusing the
#: newcomer, as the held events beyond ``MAX_PENDING`` are, dead-letters its own bytes and
#: keeps no id: resent after its pause, it ends it.
EARLY_RESUME_OVERFLOW = "early_resume_overflow"
#: Reopens and answers kept while the event they follow has not arrived yet (:func:`_reopened`,
#: :func:`_answered`), each; one more is refused (:data:`EARLY_EVENT_OVERFLOW`).
MAX_EARLY_EVENTS = 8
#: Outcome (and dead-letter reason) of a reopen or an answer that would be kept for an event
#: that has not arrived while :data:`MAX_EARLY_EVENTS` of its kind already wait; its id is not
#: kept, so resent after the event it follows, it applies.
EARLY_EVENT_OVERFLOW = "early_event_overflow"
#: State keys of the kept reopens (``erop``, for the answer or close they reopen) and answers
#: (``eans``, for the reopen they answer), with the event each holds. An entry is
#: ``[at, event id, expires]`` (SLA clock): enough to dead-letter it (:data:`HELD_EXPIRED`)
#: without keeping the event's other fields. States stored before hold bare moments; they
#: load and apply as before, get their expiry when the engine next touches them
#: (:func:`_held`), and the index rebuild arms their timer meanwhile (:func:`held_timer`).
EARLY_KEYS: dict[str, str] = {"erop": "reopened", "eans": "answered"}
_WAITS_FOR = {"erop": "the answer or close it reopens", "eans": "the reopen it answers"}
#: Dead-letter reason (and tick outcome) of a kept reopen or answer that can no longer apply:
#: the event it waits for did not come within ``SlaRules.early_hold`` of its stamp, or the
#: answer period that runs began after it. Before, such events stayed kept for good and
#: nobody learnt of them: a second ``answered`` of an answered appeal (an interim answer, then
#: the final one) was kept for a reopen that never came, up to eight per appeal, silently.
#: Their ids are forgotten, so a resend is judged again.
HELD_EXPIRED = "held_expired"
#: Timer kind of the earliest expiry among an appeal's kept reopens and answers
#: (:func:`held_timer`); its ``cycle`` is that moment's whole second, so a changed expiry is
#: another index member and the sweep's removal of a fired member never takes a newer one.
HELD_TIMER = "held"
#: Default of ``SlaRules.early_hold`` (``APPEALS_SLA_EARLY_MAX_AGE``), SLA-clock seconds.
EARLY_HOLD = 7 * 86400.0
#: Outcomes (and dead-letter reasons) of lifecycle events the state they find refuses: an
#: answer, close, pause, resume or redirect of an appeal whose period is not open (or stamped
#: before the period that runs), a reopen that can reopen nothing, an event with no SLA
#: transition. ``Effects.detail`` names the state and its moment. They were only counted and
#: their ids kept: nothing told the sender, and its resend was swallowed as a duplicate.
NOT_OPEN = "not_open"
#: Outcome of an answer of an answered appeal stamped at the very moment of the answer it
#: holds: the same answer under a new id (another system's resend). Nothing changes; no dead
#: letter; its id is remembered like an applied event's.
REPEATED = "repeated"
NOT_CLOSED = "not_closed"
IGNORED = "ignored"
#: State key: the answer moments of the periods reopens ended (one per reopen, so at most
#: :data:`MAX_HISTORY`), by which a resend of such an answer is told from a new one
#: (:func:`_answered_before`). States reopened before it was kept lack those answers: their
#: resends stay ``not_open``.
EARLIER_ANSWERS = "pans"
#: Fourth element of an ``adj`` pause entry ``["p", paused from, resumed at, PAUSE_IN_UNITS]``:
#: the pause was counted in the policy's unit (``SlaRules.pause``). Entries without it were
#: applied as wall-clock time (the version before, or rules without a policy book) and are
#: replayed that way, so a recompute never moves a deadline already published for them.
PAUSE_IN_UNITS = "units"
#: State key: the current answer period was started under ``SlaRules.recount`` (day counts
#: from the statutory last day). A period started before that kept the deadlines the
#: step-by-step arithmetic gave it; recounting one moved its deadline, even earlier.
RECOUNTED = "rc"
#: State key: when the running period's breach escalates (SLA clock), fixed when the breach is
#: recorded, by the policy in force then. Counted again from the rules in force at each tick
#: and rebuild, it followed a change of ``escalation_after_hours`` (a rules reload, the policy
#: file, ``APPEALS_ESCALATION_AFTER``) halfway: the index kept the old moment, the tick fired
#: there and reported the new one as its ``due_at``, and a rebuild could not move it (its merge
#: keeps the earlier score). ``appeals sla recompute`` applies a changed delay
#: (:func:`recompute`); a state stored before the key existed counts it from the rules in
#: force (:func:`escalation_at`). Only a breached, running period holds it.
ESCALATION_AT = "esc_at"
#: State key: the escalation of the running breach was sent, then taken back from the figures
#: by a pause stamped before its moment (:func:`_retract_escalation`); the escalation that the
#: resume arms again is recorded by its tick without a second alert (outcome :data:`RECORDED`).
#: Holds the key it was sent under (states stored before hold 1): the alert stays live until
#: its period ends (``workers.sla.resolution``). Processed in order, the
#: pause held the escalation until the resume; processed after the escalation's tick, it left
#: the escalation counted, so the figures depended on processing order.
ESCALATION_SENT = "esq"
#: State key: ``[key, sent key]`` of every alert key carried into a later cycle (or a stage's
#: later run) without being sent again (:func:`_move_deadline`, a recompute, the tick of an
#: escalation a pause held): the id its alert was delivered under, which an end record must
#: name (``workers.sla.resolution``). Before, every key of the unbroken run back from the
#: current one was ended, so one breach carried over a pause was ended as ``breach:1`` and
#: ``breach:0``, an alert that never existed among them. Begun with each answer period
#: (states written before lack it until their next one); only the newest entries matter
#: (each names the key it was carried from's sent key directly), so it keeps
#: :data:`MAX_CARRIED`.
ALERTS_CARRIED = "acar"
MAX_CARRIED = 32
#: Outcome of a tick that recorded its escalation without an alert (one sent before a pause
#: held it, :data:`ESCALATION_SENT`): the state changed and is stored, nothing is sent.
RECORDED = "recorded"
#: Tick outcomes whose state the SLA agent stores (the others changed nothing).
TICK_CHANGED = frozenset({"applied", RECORDED, HELD_EXPIRED})
#: Outcome (and dead-letter reason) of a lifecycle event whose ``authority_id`` is not the
#: body that holds the appeal (:func:`apply_lifecycle`).
FOREIGN_AUTHORITY = "foreign_authority"
#: Outcome (and dead-letter reason) of an event that would give an appeal more than
#: :data:`MAX_HISTORY` periods, redirects or pauses (:func:`apply_lifecycle`).
HISTORY_OVERFLOW = "history_overflow"
#: Outcome (and dead-letter reason) of a pause stamped before the answer period it would
#: pause began (registration, redirect or reopen). Applied, its resume moved the deadline by
#: the whole gap: a pause dated ten years early (a mistyped year) put a ``pos`` deadline ten
#: years out, and one over ten years early made every later resume, answer and close fail,
#: so the appeal stayed paused with no deadline (review of session 16). Also of an extension
#: stamped before a redirect or reopen that began the running period (:func:`_before_period`):
#: the handing-on body's extension, processed after the redirect, gave the receiving body's
#: fresh period a month more and used up its one extension. And of a redirect so stamped
#: (:func:`_redirected`): processed after a later redirect, it moved the appeal back in time.
#: The SLA agent gives it too to any event stamped before the appeal's registration by more
#: than ``APPEALS_SLA_PAST_TOLERANCE``
#: (``workers.sla.agent._check_not_before_registration``), which the first period's own check
#: here lets through.
BEFORE_PERIOD = "before_period"
#: Outcome (and dead-letter reason) of an extension the rules refuse (:func:`_extended`): one
#: beyond the policy's ``extensions_allowed`` for the body, one declared after the deadline
#: (59-FZ art. 12 p.2 extends a running term), ``extension_days`` the policy or the calendar
#: refuses, one that moves nothing, or one of an appeal answered or closed (no running term to
#: extend). ``Effects.detail`` says which. One reason for them all:
#: it is a metric label; the detail is for the operator and the authority. Before, such an
#: extension was only counted (``rejected``): the body's system believed its deadline moved,
#: and nobody could tell which event was refused or why.
EXTENSION_REFUSED = "extension_refused"
#: Reopens, redirects and pauses one appeal may have. Each adds to the appeal's history
#: (ended periods, previous bodies, pause spans, alerts of each cycle), and every event of the
#: appeal recounts that history for the figures: an authority system resending reopens in a
#: loop, or two bodies redirecting one appeal back and forth, made each event cost ~10 ms at
#: 1,000 entries and ~70 ms at 4,000 (quadratic in all), and the state grew toward Kafka's
#: message size limit (review of session 13). A real appeal has a handful.
MAX_HISTORY = 64
_GROWING = frozenset({"reopened", "redirected", "paused"})


#: Seconds from a breach to its escalation: one number, or each appeal's own (its policy's).
EscalationAfter = float | Callable[[State], float]


def escalation_at(state: State, escalation_after: EscalationAfter) -> float:
    """When the running period's breach escalates: the moment stored with the breach
    (:data:`ESCALATION_AT`), or for a state stored without it the breach plus
    ``escalation_after`` (the policy in force now)."""
    stored = state.get(ESCALATION_AT)
    if stored is not None:
        return float(stored)
    after = escalation_after(state) if callable(escalation_after) else escalation_after
    return float(state["breached"]) + after


def _escalation_delay(state: State) -> float | None:
    """The delay the running period's breach escalates after, as fixed when it was recorded
    (None: no breach, or one stored without its moment)."""
    stored, breached = state.get(ESCALATION_AT), state.get("breached")
    if stored is None or not breached:
        return None
    return float(stored) - float(breached)


@dataclass(slots=True)
class Timer:
    appeal_id: str
    kind: str  # warning | breach | escalation
    due_ts: float
    cycle: int

    @property
    def member(self) -> str:
        return f"{self.appeal_id}|{self.kind}|{self.cycle}"


@dataclass(slots=True)
class Alert:
    level: str  # warning | breach | escalation
    cycle: int
    due_ts: float
    notify_authority_id: str
    # The body whose deadline it is. Usually the appeal's current one, but a redirect past the
    # deadline reports the breach of the body that hands it on, after which the state already
    # names the receiving body ("" = the state's authority).
    authority_id: str = ""
    stage: str = ""  # "" = the answer period; else a tracked stage (``SlaRules.stages``)
    #: Raised by its timer's tick (not by an event reporting a deadline already passed): only
    #: these measure how late timers fire (``appeals_sla_timer_lag_seconds``).
    from_timer: bool = False


@dataclass(slots=True)
class Effects:
    """What a transition asks the agent to do; empty when the input was a repeat."""

    alerts: list[Alert] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    cancel: list[Timer] = field(default_factory=list)
    answered: tuple[float, bool] | None = None  # (response seconds, on time) of the last
    answers: int = 0  # answers recorded (engine.responses' last entries); >1 only when merged
    deadline: tuple[float, float] | None = None  # (old due, new due) after a recompute
    outcome: str = "applied"
    #: Why an event was refused, one line for its dead letter (the rule and its numbers, never
    #: personal data); "" unless a handler says more than ``outcome`` (``EXTENSION_REFUSED``).
    detail: str = ""
    #: Kept reopens and answers the transition gave up (:data:`HELD_EXPIRED`), for the agent
    #: to dead-letter; the state no longer holds them.
    expired: list[Expired] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Expired:
    """A kept reopen or answer given up, as its dead letter needs it (no personal data: the
    engine never kept more)."""

    kind: str  # reopened | answered
    event_id: str | None  # None: kept by a version that stored only its moment
    at: float
    detail: str


# Deadline function: (regime, start_ts, tz, urgent, authority, category, subcategory, region)
# -> due_ts. Injected so the state machine does not depend on the calendar implementation.
DueFn = Callable[[str, float, str, bool, str, str | None, str | None, str], float]
ExtendFn = Callable[[str, float, int, str, str, str | None, str | None, str], float]
# Warning function: (state, period start, due, share) -> warning moment, in the appeal's policy
# unit (``DeadlineService.warning``).
WarningFn = Callable[[State, float, float, float], float]
# Pause function: (state, due, warning, paused from, resumed at) -> (due, warning) after the
# pause, in the appeal's policy unit (``DeadlineService.pause``). Called with resumed at >=
# paused from.
PauseFn = Callable[[State, float, float, float, float], tuple[float, float]]
# Recount function: (state, adjustments, warning share) -> (due, warning) of a day-counted
# answer period from its start and those ``adj`` entries, or None when the step-by-step
# arithmetic applies (``DeadlineService.recount``).
RecountFn = Callable[[State, list[list[Any]], float], "tuple[float, float] | None"]


@dataclass(frozen=True, slots=True)
class StageRule:
    """How a tracked stage runs (``deadlines.policies.Stage``): the events that complete it (a
    breach when late), start it again, or cancel it quietly; whether its deadline alone fires
    a breach. Closing the appeal always ends it."""

    ended_by: frozenset[str]
    restarted_by: frozenset[str] = frozenset()
    cancelled_by: frozenset[str] = frozenset()
    breach_timer: bool = True


# Stage deadline function: (state, stage name, stage start, warning share) -> (due, warning
# moment); the share is the appeal's own (``SlaRules.of``), as for the answer.
StageDueFn = Callable[[State, str, float, float], tuple[float, float]]


@dataclass(frozen=True, slots=True)
class SlaParams:
    """The policy numbers one appeal's clock runs by (its regime, region, authority, category)."""

    warning_share: float
    escalation_after: float
    max_extensions: int


@dataclass(frozen=True, slots=True)
class SlaRules:
    """Deadline functions and policy numbers.

    ``params`` resolves an appeal's own policy numbers (the policy book's ``warning_share``,
    ``escalation_after_hours``, ``extensions_allowed`` with their per-authority overrides);
    without it every appeal uses the flat numbers here (tests, the demo's simple clock).

    ``warning`` and ``pause`` count the warning moment and a pause in the appeal's policy unit
    (working hours, working days, calendar days: ``DeadlineService``). Without them the clock
    is plain wall-clock arithmetic, as the simple deadline functions of tests are.
    """

    due: DueFn
    extend: ExtendFn
    warning_share: float = 0.75
    escalation_after: float = 3 * 86400.0
    max_extensions: int = 1
    params: Callable[[State], SlaParams] | None = None
    warning: WarningFn | None = None
    pause: PauseFn | None = None
    #: Day-counted periods: the deadline recounted from the period's start and all its
    #: extensions and pauses, so each counts from the statutory last day and the shift to a
    #: working day applies once (``recounted``). Without it (tests' simple rules), and for
    #: working-hour periods, each adjustment moves the deadline it finds.
    recount: RecountFn | None = None
    #: The time zone an authority counts its deadlines in (the routing rules'
    #: ``timezone:``), for the receiving body of a redirect; None or an unknown body keeps the
    #: appeal's zone.
    zone_of: Callable[[str], str | None] | None = None
    #: The tracked stages of an appeal's policy by name, and their deadlines. Without both,
    #: no stage is tracked (tests' simple rules).
    stages: Callable[[State], dict[str, StageRule]] | None = None
    stage_due: StageDueFn | None = None
    #: SLA-clock seconds a reopen or answer kept for an event that has not arrived waits,
    #: from its own stamp, before it is dead-lettered (:data:`HELD_EXPIRED`;
    #: ``APPEALS_SLA_EARLY_MAX_AGE``). Counted from the stamp so that the engine stays a
    #: function of state and event (a replay expires an entry at the same moment).
    early_hold: float = EARLY_HOLD

    def stage_rules(self, state: State) -> dict[str, StageRule]:
        if self.stages is None or self.stage_due is None:
            return {}
        return self.stages(state)

    def of(self, state: State) -> SlaParams:
        if self.params is not None:
            return self.params(state)
        return SlaParams(self.warning_share, self.escalation_after, self.max_extensions)

    def warn_at(self, state: State, start: float, due: float) -> float:
        """Warning moment of a period ``start``..``due``: its policy's share of the time used.

        The one place every transition and :func:`replay_deadline` get it from, so a live
        state and its replay agree.
        """
        share = self.of(state).warning_share
        if self.warning is not None:
            return float(self.warning(state, start, due, share))
        return start + (due - start) * share

    def recounted(self, state: State, adjustments: list[list[Any]]
                  ) -> tuple[float, float] | None:
        """(due, warning) of the current period with ``adjustments`` (its ``adj`` entries, in
        order) when :attr:`recount` handles its policy, else None. ValueError: an extension
        the policy does not allow."""
        if self.recount is None or not state.get(RECOUNTED):
            return None
        return self.recount(state, adjustments, self.of(state).warning_share)

    def after_pause(self, state: State, due: float, warn: float, paused_from: float,
                    resumed_at: float, in_units: bool = True) -> tuple[float, float]:
        """(due, warning) after a pause ``paused_from``..``resumed_at``; never earlier.

        The one place the resume, a pause still running (:func:`_running_due`) and
        :func:`replay_deadline` get it from. A resume stamped before its pause (events out
        of order) counts as a pause of no length. ``in_units=False`` replays a pause the way
        it was applied before pauses were counted in policy units (wall clock).
        """
        resumed_at = max(resumed_at, paused_from)
        if in_units and self.pause is not None:
            new_due, new_warn = self.pause(state, due, warn, paused_from, resumed_at)
            return float(new_due), float(new_warn)
        # Wall clock: the deadline and the period's start move by the paused time, unless
        # the pause began after the deadline (it cannot cure a breach).
        shift = resumed_at - paused_from if paused_from < due else 0.0
        start = state["start"]
        return due + shift, start + shift + (due - start) * self.of(state).warning_share


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def known_zone(name: Any) -> str | None:
    """``name`` if this host knows it as an IANA zone, else None (never raises): an
    authority's zone from the routing rules that this host's tz database lacks must fall back
    to the region's, in the worker and in ``appeals sla due`` alike."""
    if not name:
        return None
    try:
        zone(name)
    except (ValueError, KeyError, TypeError):  # ZoneInfoNotFoundError is a KeyError
        return None
    return str(name)


@lru_cache(maxsize=16384)
def local_day(ts: float, tz: str) -> str:
    """The local date of ``ts`` in zone ``tz``, ISO-formatted.

    Remembered: a state's figures (:func:`contributions`) are counted before and after every
    event, and each count reads the same few moments again (received, answered, breached).
    A pure function of its arguments; errors are never cached.
    """
    return dt.datetime.fromtimestamp(ts, zone(tz)).date().isoformat()


def new_state(
    routed: dict[str, Any],
    partition: int,
    registered_ts: float,
    tz: str,
    rules: SlaRules,
    figure_zones: tuple[str, str] | None = None,
) -> tuple[State, Effects]:
    """State for a freshly routed appeal, with its warning and breach timers.

    ``figure_zones``: the zones of the place's and the category's days, as the routing rules
    name them (``RoutingRules.day_zone`` of the region, ``category_zone``): kept in the state
    so that :func:`keyed_contributions` stays a function of the state alone.
    """
    state: State = {
        "id": routed["appeal_id"],
        "p": partition,
        "regime": routed["regime"],
        "region": routed["region"],
        "tz": tz,
        "auth": routed["authority_id"],
        "parent": routed.get("parent_authority_id"),
        "cat": routed.get("category"),
        "sub": routed.get("subcategory"),
        # Where the problem is (a municipality id of the routing rules), kept across redirects:
        # the per-municipality figures answer "how are appeals from this place handled".
        "muni": routed.get("municipality"),
        "urgent": bool(routed.get("urgent")),
        "complaint_about": routed.get("complaint_about"),
        # The intake's near-duplicate flag (the earlier appeal this one repeats), for the read
        # model: the body sees a resend as one. Not read by the clock or the figures.
        "dup": routed.get("duplicate_of"),
        "reg": registered_ts,
        "recv": registered_ts,  # when the current authority received it (redirect restarts)
        "start": registered_ts,  # start of the running answer period
        "due": 0.0,
        "warn": 0.0,
        "status": "running",
        "cycle": 0,
        "ext": 0,
        "paused": None,
        "answered": None,
        "breached": None,
        "escalated": None,
        "alerts": [],
        # [local day, authority] of every breach and escalation, kept when a later extension
        # cures it and charged to the body that missed the deadline even after a redirect.
        # (States written before the authority was recorded hold bare days.)
        "bdays": [],
        "edays": [],
        "resp": [],  # [authority, local day, seconds] of every answer (reopened ones too)
        # [authority, local day, outcome] of every answer period that ended before the current
        # one: a reopen keeps the earlier answer (or overdue close) in the figures, a redirect
        # past the deadline keeps the unanswered-overdue item of the body that handed it on.
        # (States written before this was recorded lack the key: read as empty.)
        "outcomes": [],
        "prev": [],  # [authority, local day received] of bodies that redirected it onwards
        "events": [],
        # Extensions ["e", days] and pauses ["p", from, to(, PAUSE_IN_UNITS)] of the current
        # period, replayed by recompute.
        "adj": [],
    }
    if figure_zones is not None:
        # The zones a place's (``mtz``) and a category's (``ctz``) days are kept in, the ones
        # the API cuts their windows on; states written before lack them (see _figures_zone).
        state["mtz"], state["ctz"] = figure_zones
    received = routed.get("received_at")
    if received:
        received_ts = parse_datetime(received).timestamp()
        if received_ts < registered_ts:
            # The receipt of a letter intake read late, registered days after it: a body stamps
            # its events from the receipt, and the agent's past tolerance counts from the
            # earlier. Kept only where it is earlier (states written before lack it: ``reg``).
            state["rcpt"] = received_ts
    effects = Effects()
    _start_period(state, registered_ts, rules, effects)
    _start_stages(state, registered_ts, rules, effects, None)
    return state, effects


def copy_state(state: Any) -> State | None:
    """A copy a transition may change freely: the engine only ever appends to a state's
    lists or replaces its values, so copying the lists themselves is enough."""
    if state is None:
        return None
    if not isinstance(state, dict):
        raise ValueError("the SLA table holds a value that is not an object for this key")
    # The same as ``{k: (list(v) if isinstance(v, list) else v) ...}`` at half the cost: the
    # dict is copied in C and only its lists (a third of its values) are replaced.
    new = state.copy()
    for k, v in state.items():
        if isinstance(v, list):
            new[k] = list(v)
    return new


def _start_period(state: State, start_ts: float, rules: SlaRules, effects: Effects) -> None:
    """A new answer period (registration, redirect, reopen): a fresh clock and fresh alerts.

    The extension count is not the period's but the body's: 59-FZ art. 12 p.2 lets the body
    that answers extend once, so a receiving body after a redirect has its own extension
    (``_redirected`` resets it), while a reopen is the same body's same appeal and does not
    give it a second one.
    """
    due = rules.due(state["regime"], start_ts, state["tz"], state["urgent"], state["auth"],
                    state["cat"], state["sub"], state["region"])
    state["start"] = start_ts
    state["adj"] = []
    if rules.recount is not None:
        state[RECOUNTED] = 1
    else:
        state.pop(RECOUNTED, None)
    if state["due"]:
        effects.cancel.extend(_timers(state, state["cycle"]))
        effects.cancel.append(Timer(state["id"], "escalation", 0.0, state["cycle"]))
        state["cycle"] += 1
    state["due"] = due
    state["warn"] = rules.warn_at(state, start_ts, due)
    state["breached"] = None
    state["escalated"] = None
    state.pop(ESCALATION_AT, None)
    state.pop(ESCALATION_SENT, None)
    # A new period: the carried keys of the earlier one are done with (a stage's stay).
    state[ALERTS_CARRIED] = [e for e in state.get(ALERTS_CARRIED) or () if "." in e[0]]
    effects.timers.extend(_timers(state, state["cycle"]))


def _move_deadline(state: State, due: float, warn: float, rules: SlaRules, effects: Effects,
                   now: float, escalation_after: float | None = None) -> None:
    """The deadline of the running period moved (extension, pause, recompute).

    Every move bumps the cycle, so ticks of the old deadline are recognised as stale. An alert
    already sent whose moment has passed under the new deadline too is carried into the new
    cycle instead of being sent again: the supervisor already knows. So a resume after a pause
    that began past the deadline, or a late answer while paused, never repeats a breach, and
    a breach carried on leaves the period's unsent warning unsent and keeps its escalation,
    if sent, whatever the new escalation moment. An alert whose new moment lies ahead is
    armed again (a recompute cures a breach; the breach stays in the appeal's
    history, ``bdays``; an extension is stamped in time, so a breach its tick recorded was
    taken back first, ``_retract_breach``).

    A breach carried on whose escalation is not sent escalates after the delay fixed when it
    was recorded (an extension or a resume is no change of policy), or ``escalation_after``
    when given (a recompute applies the policy in force).
    """
    old_cycle = state["cycle"]
    fired = {lvl for lvl in ("warning", "breach", "escalation")
             if f"{lvl}:{old_cycle}" in state["alerts"]}
    effects.cancel.extend(_timers(state, old_cycle))
    effects.cancel.append(Timer(state["id"], "escalation", 0.0, old_cycle))
    cycle = old_cycle + 1
    if escalation_after is None:
        escalation_after = _escalation_delay(state)
    was_breached = state["breached"]
    state.update(cycle=cycle, due=due, warn=warn, breached=None)
    state.pop(ESCALATION_AT, None)
    escalated, state["escalated"] = state["escalated"], None
    carried = set()
    if "warning" in fired and warn <= now:
        carried.add("warning")
    if "breach" in fired and due <= now:
        carried.add("breach")
        state["breached"] = due
        # The escalation of a breach that goes on stays sent, even when the new deadline puts
        # its moment ahead: the supervisor was told of this very breach already (re-arming it
        # sent a second escalation of one breach). One a pause took back from the figures
        # (``escalated`` cleared, :func:`_retract_escalation`) is armed again, as the pause
        # processed in order left it, and its tick records it without a second alert.
        if "escalation" in fired and escalated is None:
            # The id it was delivered under: it stays live (``workers.sla.resolution``), and
            # the tick that records it again carries it (:func:`_fire`).
            state[ESCALATION_SENT] = sent_key(state, f"escalation:{old_cycle}")
            fired.discard("escalation")
        if "escalation" in fired:
            carried.add("escalation")
            state["escalated"] = escalated
        else:
            if escalation_after is None:
                escalation_after = rules.of(state).escalation_after
            state[ESCALATION_AT] = due + escalation_after
    if "breach" not in carried:
        state.pop(ESCALATION_SENT, None)  # a breach cured: a later one is a new breach
    for lvl in sorted(carried):
        _carry(state, f"{lvl}:{old_cycle}", f"{lvl}:{cycle}")
    if "breach" in carried:
        # The same breach goes on: its history entries follow it into the new cycle (so an
        # event that later shows there was none takes back the right ones). One taken back
        # before (``_retract_breach``) that the new deadline makes real again is recorded.
        state["bdays"] = _retag(state["bdays"], old_cycle, cycle)
        if not was_breached:
            state["bdays"].append([local_day(due, state["tz"]), state["auth"], cycle])
        if "escalation" in carried:
            state["edays"] = _retag(state["edays"], old_cycle, cycle)
    if state["status"] == "running":
        # A period's warning is never sent after its breach: a breach carried on (a resume
        # after a pause that began past the deadline) leaves its unsent warning unsent.
        if "warning" not in carried and "breach" not in carried:
            effects.timers.append(Timer(state["id"], "warning", warn, cycle))
        if "breach" not in carried:
            effects.timers.append(Timer(state["id"], "breach", due, cycle))
        elif "escalation" not in carried:
            effects.timers.append(
                Timer(state["id"], "escalation", state[ESCALATION_AT], cycle))


def sent_key(state: State, key: str) -> str:
    """The key the alert ``key`` names was delivered under: itself unless it was carried."""
    for carried, sent in reversed(state.get(ALERTS_CARRIED) or ()):
        if carried == key:
            return str(sent)
    return key


def _note_carried(state: State, key: str, sent: str) -> None:
    """Record that ``key`` stands for the alert sent as ``sent`` (no-op on a state written
    before carried keys were recorded: its ends follow the old walk)."""
    carried = state.get(ALERTS_CARRIED)
    if carried is None or key == sent:
        return
    state[ALERTS_CARRIED] = [*carried[-(MAX_CARRIED - 1):], [key, sent]]


def _carry(state: State, old_key: str, key: str) -> None:
    """Carry the alert of ``old_key`` into ``key``: not sent again, ended under its sent id."""
    sent = sent_key(state, old_key)
    state["alerts"].append(key)
    _note_carried(state, key, sent)


def _retag(entries: list[Any], old_cycle: int, cycle: int) -> list[Any]:
    """Breach or escalation entries of ``old_cycle`` as entries of ``cycle`` (replaced, not
    changed in place: a state copy shares the inner lists)."""
    return [[*e[:2], cycle] if _cycle_of(e) == old_cycle else e for e in entries]


def _cycle_of(entry: Any) -> int | None:
    """The cycle a breach or escalation entry was recorded in (None: written before entries
    named it)."""
    if isinstance(entry, list) and len(entry) > 2:
        return int(entry[2])
    return None


def late(at: float, due: float) -> bool:
    """Whether a moment ``at`` is past the deadline ``due``.

    The one place lateness is judged: a moment after ``due`` (23:59:59 local of the last day
    for day-counted periods). The breach timers of the answer period and of the stages fire
    at ``due`` itself, so this is the same instant: an event stamped at or before it and
    processed after the tick takes the answer period's breach back (``_retract_breach``).
    Counting the whole last second as in time (23:59:59.5) was tried and taken back: the
    stage breaches and the pause arithmetic judge at ``due`` too, so a stage's breach and a
    pause's shift came to depend on processing order (review of session 12); moving every
    breach timer to the end of the second would be the way to do it.
    """
    return at > due


def _retract_breach(state: State, at: float) -> None:
    """An event stamped at or before the running deadline (an answer, an extension, a pause,
    a redirect, a close) shows that the breach recorded for it by its timer did not happen:
    the timer's tick was only processed first. The breach (and an escalation after it) leaves
    the figures, so they do not depend on the order of tick and event; the alert already sent
    stays sent (``alerts`` keeps its key, so it is never sent twice). Entries from before
    breaches named their cycle are kept. One stamped after the deadline but before the
    escalation takes back the escalation only (:func:`_retract_escalation`)."""
    if not state["breached"]:
        return
    if late(at, state["due"]):
        _retract_escalation(state, at)
        return
    cycle = state["cycle"]
    if not any(_cycle_of(e) == cycle for e in state["bdays"]):
        return
    state["bdays"] = [e for e in state["bdays"] if _cycle_of(e) != cycle]
    state["edays"] = [e for e in state["edays"] if _cycle_of(e) != cycle]
    state["breached"] = None
    state["escalated"] = None
    state.pop(ESCALATION_AT, None)
    state.pop(ESCALATION_SENT, None)


def _retract_escalation(state: State, at: float) -> None:
    """An event stamped past the deadline but before the escalation moment (an answer, a
    close, a redirect ending the period; a pause holding it) shows that the escalation its
    tick recorded did not happen: processed in order, the event cancelled (or held) it. The
    escalation leaves the figures (``edays``, ``escalated``); the alert already sent stays
    sent. Figures are event-time sums, so a replay in another order must give the same ones:
    before, an answer of day 31 processed after the escalation tick of day 33 left the
    escalation counted, and in order it was not."""
    escalated = state.get("escalated")
    if not escalated or at >= float(escalated):
        return
    cycle = state["cycle"]
    if not any(_cycle_of(e) == cycle for e in state["edays"]):
        return
    state["edays"] = [e for e in state["edays"] if _cycle_of(e) != cycle]
    state["escalated"] = None


def _start_stages(state: State, at: float, rules: SlaRules, effects: Effects,
                  trigger: str | None) -> None:
    """Start the tracked stages at ``at``: every one at registration (``trigger`` None), else
    those the event ``trigger`` restarts (``StageRule.restarted_by``). A restarted stage gets
    the next ``k``, so ticks and alerts of its earlier run are told apart."""
    specs = rules.stage_rules(state)
    entries = {e[0]: e for e in state.get("stg", ())}
    for name, old in entries.items():
        if name not in specs and _armed(old):
            # Not tracked by the policy that applies now (the receiving body's own, or a
            # policy changed since): it ends here, quietly, rather than alert for a body whose
            # policy does not ask for it.
            effects.cancel.extend(_stage_timers(state, old))
            entries[name] = [*old[:5], at, *old[6:]]
    if specs:
        share = rules.of(state).warning_share
    for name, spec in specs.items():
        if trigger is not None and trigger not in spec.restarted_by:
            continue
        old = entries.get(name)
        k = 0
        if old is not None:
            if _armed(old):
                effects.cancel.extend(_stage_timers(state, old))
            k = int(old[4]) + 1
        assert rules.stage_due is not None
        due, warn = rules.stage_due(state, name, at, share)
        entry = [name, at, due, warn, k, None, spec.breach_timer, None]
        entries[name] = entry
        effects.timers.extend(_stage_timers(state, entry))
    if entries:
        state["stg"] = list(entries.values())


def _end_stages(state: State, kind: str, at: float, rules: SlaRules,
                effects: Effects) -> None:
    """The lifecycle event ``kind`` completes, settles or (``closed``) ends the open stages.

    A completion after the deadline is a breach, reported here once when its timer has not
    fired (a backlog, a replay, an event stamped late; or a stage whose deadline alone is no
    breach, ``StageRule.breach_timer``). Settling (``cancelled_by``) is quiet: the timers go,
    the stage stays open for a later completion. Closing ends it, quietly unless ``closed``
    completes it. An event that will start a stage again (``restarted_by``: a redirect, a
    reopen) after the deadline of a run whose deadline is a breach reports that breach first,
    for the body whose run it was: whether the tick or the event is processed first must not
    decide whether the breach is known.
    """
    entries = state.get("stg")
    if not entries:
        return
    specs = rules.stage_rules(state)
    out: list[list[Any]] = []
    for entry in entries:
        spec = specs.get(entry[0])
        if (spec is not None and kind in spec.restarted_by and _armed(entry) and entry[6]
                and late(at, entry[2])):
            _fire_stage(state, entry, "breach", effects)
        if entry[5] is None:
            completes = spec is not None and kind in spec.ended_by
            settles = spec is not None and kind in spec.cancelled_by
            if completes or kind == "closed" or (settles and entry[7] is None):
                if _armed(entry):
                    effects.cancel.extend(_stage_timers(state, entry))
                if completes and late(at, entry[2]):
                    _fire_stage(state, entry, "breach", effects)
                if completes or kind == "closed":
                    entry = [*entry[:5], at, *entry[6:]]
                else:
                    entry = [*entry[:7], at]
        out.append(entry)
    state["stg"] = out


def _armed(entry: list[Any]) -> bool:
    """Whether the stage's timers are (still) in the index: open and not settled."""
    return entry[5] is None and entry[7] is None


def stage_running(state: State) -> bool:
    """Whether a tracked stage of the appeal still runs (open, not settled): its timers may
    still fire, so an answered appeal is still tracked (an incident's final answer after its
    first response)."""
    return state.get("status") != "closed" and any(_armed(e) for e in state.get("stg") or ())


def _stage_timers(state: State, entry: list[Any]) -> list[Timer]:
    name, _start, due, warn, k = entry[:5]
    timers = [Timer(state["id"], f"{name}.warning", warn, k)]
    if entry[6]:  # the deadline alone is a breach
        timers.append(Timer(state["id"], f"{name}.breach", due, k))
    return timers


def stage_timers(state: State) -> list[Timer]:
    """Timers the open stages of a state still need (for the index rebuild): a warning only
    while its breach has not been reported."""
    if state.get("status") == "closed":
        return []
    fired = set(state.get("alerts", ()))
    out: list[Timer] = []
    for entry in state.get("stg", ()):
        if not _armed(entry):
            continue
        name, k = entry[0], entry[4]
        if f"{name}.breach:{k}" in fired:
            continue
        out.extend(t for t in _stage_timers(state, entry) if f"{t.kind}:{k}" not in fired)
    return out


def _fire_stage(state: State, entry: list[Any], level: str, effects: Effects,
                timer: bool = False) -> bool:
    """Record and emit a stage alert once per (stage, level, k); False when already sent."""
    name, _start, due, warn, k = entry[:5]
    key = f"{name}.{level}:{k}"
    if key in state["alerts"]:
        return False
    state["alerts"].append(key)
    at_ts = due if level == "breach" else warn
    effects.alerts.append(Alert(level, int(k), at_ts, state["auth"], state["auth"], stage=name,
                                from_timer=timer))
    return True


def _timers(state: State, cycle: int) -> list[Timer]:
    return [
        Timer(state["id"], "warning", state["warn"], cycle),
        Timer(state["id"], "breach", state["due"], cycle),
    ]


def event_time(event: dict[str, Any]) -> float:
    """The moment of a lifecycle event (its ``at``) as Unix seconds.

    Raises ValueError (or OverflowError) when ``at`` names no moment that the engine can count
    from: checked before an event is held for a routing that has not come yet, so that it is
    refused then rather than when the routing arrives.
    """
    at = parse_datetime(event["at"]).timestamp()
    dt.datetime.fromtimestamp(at, dt.UTC)  # figures count it on a day: it must have one
    return at


def apply_lifecycle(state: State, event: dict[str, Any], rules: SlaRules,
                    resolve_parent: Callable[[str], str | None] | None = None) -> Effects:
    """Apply one lifecycle event (already validated against its schema).

    A reopen, redirect or pause beyond the appeal's :data:`MAX_HISTORY` is not applied
    (outcome ``HISTORY_OVERFLOW``); answers, closes and the rest always are, so such an appeal
    can still end. An event naming an ``authority_id`` other than the appeal's current body is
    not applied (outcome ``FOREIGN_AUTHORITY``): after a redirect, the handing-on body's close or
    extension must not end or move the receiving body's period. Events without one apply to
    whichever body holds the appeal. A pause, extension or redirect of an earlier period
    (``BEFORE_PERIOD``), an extension the rules refuse (``EXTENSION_REFUSED``, the rule in
    ``effects.detail``) and an event the state refuses (``NOT_OPEN``, ``NOT_CLOSED``,
    ``IGNORED``, the state in ``effects.detail``) change nothing, and their ids are not
    remembered (:data:`_NOT_KEPT`): the agent dead-letters them, and a resend is judged again.
    A reopen or answer that overtook the event it follows is kept (outcome ``early``) and
    applied when that event arrives (:func:`_apply_held`); one that can no longer apply is
    given up (``effects.expired``, :data:`HELD_EXPIRED`), and the index's held timer follows
    what stays kept (:func:`held_timer`).

    Raises on an event it cannot apply, possibly after changing ``state``: callers apply it
    to a copy they can throw away (``workers.sla.agent``).
    """
    effects = Effects()
    event_id = event["event_id"]
    if event_id in state["events"]:
        effects.outcome = "duplicate"
        return effects
    reporter = event.get("authority_id")
    if reporter and reporter != state["auth"]:
        # Reported by a body that does not hold the appeal (the one that redirected it, as
        # a rule): its close, extension or answer is not the current body's. Nothing changes
        # and the event id is not kept (the agent dead-letters it, ``FOREIGN_AUTHORITY``).
        effects.outcome = FOREIGN_AUTHORITY
        return effects
    kind = event["event"]
    if kind in _GROWING and state.get("hist", 0) >= MAX_HISTORY:
        # Not applied and its id not kept: the agent dead-letters it (HISTORY_OVERFLOW).
        effects.outcome = HISTORY_OVERFLOW
        return effects
    at = parse_datetime(event["at"]).timestamp()
    handler = _HANDLERS.get(kind)
    if handler is None:
        effects.outcome = IGNORED
        effects.detail = f"{kind} stamped {event['at']}: no SLA transition for it"
    else:
        armed = held_timer(state)
        for key in EARLY_KEYS:
            _held(state, key, rules)  # bare moments of an older state get their expiry
        handler(state, event, at, rules, effects, resolve_parent)
        if kind in _GROWING and effects.outcome == "applied":
            state["hist"] = state.get("hist", 0) + 1
        if effects.outcome in ("applied", "early"):
            _apply_held(state, rules, effects)
        _rearm_held(state, armed, effects)
    if effects.outcome in _NOT_KEPT:
        # Refused, or a repeat under a new id: the id is not remembered, so a resend (after
        # the event it waited for, or corrected) is judged again.
        return effects
    events = state["events"]
    events.append(event_id)
    if len(events) > MAX_EVENT_IDS:
        del events[: len(events) - MAX_EVENT_IDS]
    return effects


#: Outcomes whose event id :func:`apply_lifecycle` does not remember.
_NOT_KEPT = frozenset({NOT_OPEN, NOT_CLOSED, IGNORED, BEFORE_PERIOD, EXTENSION_REFUSED,
                       EARLY_RESUME_OVERFLOW, EARLY_EVENT_OVERFLOW, "duplicate"})
#: Outcomes of an event the state refused (not a repeat).
_REFUSED = _NOT_KEPT - {"duplicate"}


def _ended_at(state: State) -> float | None:
    """When the answer period that is not open any more ended: its answer, else its close."""
    if state["answered"] is not None:
        return float(state["answered"])
    closed = state.get("closed")
    return None if closed is None else float(closed)


def _state_detail(state: State) -> str:
    """The appeal's status and its moment, for a refusal's detail (no personal data)."""
    tz, status = state["tz"], state["status"]
    if status == "running":
        return f"its answer period runs since {_local_iso(float(state['start']), tz)}"
    if status == "paused":
        paused = state["paused"]
        since = f" since {_local_iso(float(paused), tz)}" if paused is not None else ""
        return f"it is paused{since}"
    ended = _ended_at(state)
    parts = []
    if state["answered"] is not None:
        parts.append(f"answered at {_local_iso(float(state['answered']), tz)}")
    if state.get("closed") is not None:
        parts.append(f"closed at {_local_iso(float(state['closed']), tz)}")
    return "it is " + (" and ".join(parts) if ended is not None else status)


def _refuse(effects: Effects, outcome: str, event: dict[str, Any], why: str) -> None:
    effects.outcome = outcome
    effects.detail = f"{event['event']} stamped {event['at']}: {why}"[:300]


def _held(state: State, key: str, rules: SlaRules) -> list[list[Any]]:
    """The entries kept under ``key`` (:data:`EARLY_KEYS`), oldest stamp first. Bare moments
    of a state stored before entries named their event become ``[at, None, at +
    early_hold]``: they still apply, and expire like the others (their dead letter can name
    no event id)."""
    held = state.get(key)
    if not held:
        return []
    if not all(isinstance(entry, list) for entry in held):
        held = state[key] = sorted(
            (entry if isinstance(entry, list)
             else [float(entry), None, float(entry) + rules.early_hold] for entry in held),
            key=lambda entry: float(entry[0]))
    return list(held)


def held_timer(state: State, early_hold: float | None = None) -> Timer | None:
    """The timer of the earliest expiry among the appeal's kept reopens and answers (kind
    :data:`HELD_TIMER`), or None.

    Bare moments of a state stored before 470f26f count as expiring ``early_hold`` after
    them, as :func:`_held` will store them: the index rebuild passes it, else an answered
    appeal's old kept answer, which rarely sees another event to convert it, never expired.
    Without ``early_hold`` they are left out: the engine asks so for the timer armed before a
    transition, so that converting them always (re)adds their timer, which an index kept from
    the older version lacks.
    """
    moments = []
    for key in EARLY_KEYS:
        for entry in state.get(key) or ():
            if isinstance(entry, list):
                moments.append(float(entry[2]))
            elif early_hold is not None:
                moments.append(float(entry) + early_hold)
    if not moments or "id" not in state:
        return None
    due = min(moments)
    return Timer(state["id"], HELD_TIMER, due, int(due))


def _rearm_held(state: State, armed: Timer | None, effects: Effects) -> None:
    """Move the held timer from ``armed`` (before the transition) to what is kept now."""
    now = held_timer(state)
    if now == armed:
        return
    if armed is not None and (now is None or now.member != armed.member):
        effects.cancel.append(armed)
    if now is not None:
        effects.timers.append(now)


def _hold(state: State, key: str, at: float, event: dict[str, Any], effects: Effects,
          rules: SlaRules) -> None:
    """Keep ``at`` and the event's id under ``key`` until the event it follows arrives
    (:func:`_apply_held`), at most :data:`MAX_EARLY_EVENTS` and ``rules.early_hold`` past its
    stamp (:func:`expire_held`); one more is refused, its id not kept."""
    held = _held(state, key, rules)
    if len(held) >= MAX_EARLY_EVENTS:
        tz = state["tz"]
        _refuse(effects, EARLY_EVENT_OVERFLOW, event,
                f"{len(held)} {event['event']} events of appeal {state['id']} already wait for "
                f"{_WAITS_FOR[key]} that has not arrived (stamped "
                f"{_local_iso(float(held[0][0]), tz)} to {_local_iso(float(held[-1][0]), tz)}); "
                "resend it after that")
        return
    entry = [at, event.get("event_id"), at + rules.early_hold]
    state[key] = sorted([*held, entry], key=lambda e: float(e[0]))
    effects.outcome = "early"


def _take_held(state: State, key: str, since: float, rules: SlaRules) -> list[Any] | None:
    """The entry kept under ``key`` with the earliest stamp at or after ``since`` (removed),
    or None."""
    held = _held(state, key, rules)
    for i, entry in enumerate(held):
        if float(entry[0]) >= since:
            del held[i]
            if held:
                state[key] = held
            else:
                del state[key]
            return entry
    return None


def _drop_held(state: State, key: str, entries: list[list[Any]]) -> None:
    """Remove ``entries`` (entries of ``key`` as :func:`_held` gave them) from the state."""
    kept = [entry for entry in state.get(key) or () if entry not in entries]
    if kept:
        state[key] = kept
    else:
        state.pop(key, None)


def _held_event(key: str, entry: list[Any]) -> dict[str, Any]:
    """The kept event as far as the entry holds it (for a refusal's detail, a hold again)."""
    return {"event_id": entry[1], "event": EARLY_KEYS[key], "at": _iso_utc(float(entry[0]))}


def _iso_utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _give_up(state: State, key: str, entry: list[Any], effects: Effects, why: str) -> None:
    """Drop a kept event for good: its dead letter in ``effects.expired``, its id forgotten
    (a resend is judged again, as any refused event's is)."""
    event_id = entry[1]
    if event_id is not None and event_id in state["events"]:
        state["events"].remove(event_id)
    kind = EARLY_KEYS[key]
    effects.expired.append(Expired(
        kind, event_id, float(entry[0]),
        f"{kind} stamped {_iso_utc(float(entry[0]))} was kept for {_WAITS_FOR[key]}: "
        f"{why}"[:300]))


def _apply_held(state: State, rules: SlaRules, effects: Effects) -> None:
    """Apply the reopens and answers kept for an event that has now arrived.

    A reopen that found its period still open is kept (``erop``): the close or answer it
    reopens was sent before it but re-keyed behind it. It applies once the period ends at or
    before its stamp. An answer that found the period ended before its stamp is kept
    (``eans``): it answers a reopen still on its way, and applies once a reopen at or before
    its stamp starts the period. Each applies as had it come in order (and may free the next).

    Then, while a period runs, what is kept with a stamp before its start is given up
    (:func:`_give_up`): a reopen or answer of an earlier period is refused as such
    (:func:`_before_period`), so no later event can apply it.
    """
    for _ in range(2 * MAX_EARLY_EVENTS):
        status = state["status"]
        inner = Effects()
        if status in OPEN_STATUSES:
            key = "eans"
            entry = _take_held(state, key, float(state["start"]), rules)
            if entry is None:
                break
            _answered(state, _held_event(key, entry), float(entry[0]), rules, inner, None)
        else:
            key = "erop"
            ended = _ended_at(state)
            if (ended is None or state.get("hist", 0) >= MAX_HISTORY
                    or (entry := _take_held(state, key, ended, rules)) is None):
                break
            _reopened(state, _held_event(key, entry), float(entry[0]), rules, inner, None)
            if inner.outcome == "applied":
                state["hist"] = state.get("hist", 0) + 1
        if inner.outcome in _REFUSED:  # refused now: it cannot apply any more
            _give_up(state, key, entry, effects, inner.detail or inner.outcome)
        effects.alerts.extend(inner.alerts)
        effects.timers.extend(inner.timers)
        effects.cancel.extend(inner.cancel)
        effects.expired.extend(inner.expired)
        if inner.answered is not None:
            effects.answered = inner.answered
        effects.answers += inner.answers
    if state["status"] in OPEN_STATUSES:
        start = float(state["start"])
        for key in EARLY_KEYS:
            passed = [e for e in _held(state, key, rules) if float(e[0]) < start]
            _drop_held(state, key, passed)
            for entry in passed:
                _give_up(state, key, entry, effects,
                         f"the answer period running since {_iso_utc(start)} began after it, "
                         "so it can no longer apply")


def expire_held(state: State, cycle: int, rules: SlaRules, effects: Effects) -> Effects:
    """The held timer fired (kind :data:`HELD_TIMER`, ``cycle`` the whole second it was set
    for): give up the kept reopens and answers whose expiry it reached (outcome
    :data:`HELD_EXPIRED`; ``stale`` when none) and arm the timer of those left."""
    armed = held_timer(state)
    for key in EARLY_KEYS:
        due = [e for e in _held(state, key, rules) if int(float(e[2])) <= cycle]
        _drop_held(state, key, due)
        for entry in due:
            waited = (float(entry[2]) - float(entry[0])) / 86400
            _give_up(state, key, entry, effects,
                     f"that did not come within {waited:g} days of its stamp "
                     "(APPEALS_SLA_EARLY_MAX_AGE); resend it once that event is sent")
    effects.outcome = HELD_EXPIRED if effects.expired else "stale"
    _rearm_held(state, armed, effects)
    return effects


def _before_period(state: State, at: float) -> bool:
    """Is ``at`` before a redirect or a reopen that began the running answer period?

    Such an answer, close or extension belongs to an earlier period (the handing-on body's,
    or the one the reopen ended) and was only processed late: events without the appeal's key
    are re-published keyed, each from the partition it was read on, so they can reach the
    state in another order than they were sent. Applied, an answer stamped before a redirect
    credited the receiving body with an answer in 0 s, a close ended a period before it began
    (its timers cancelled, its deadline never reported), and an extension gave a fresh period
    a month more. The first period is not judged so: it begins at the registration, and a
    body's system stamping on a date-only register or with its clock a little behind must not
    lose an answer. An event stamped before registration by more than
    ``APPEALS_SLA_PAST_TOLERANCE`` is refused by the SLA agent before it gets here
    (``workers.sla.agent._check_not_before_registration``: the tolerance is wall-clock
    seconds, which this pure function cannot measure).
    """
    return at < state["start"] and state["start"] != state["reg"]


def _accepted(state: State, event: dict[str, Any], at: float, rules: SlaRules,
              effects: Effects, _rp: Any) -> None:
    """Record the acceptance and settle (or complete) the stages it names.

    One stamped before the redirect or reopen that began the running period is the earlier
    body's (or period's), processed late: its moment is kept, but the stages, which run for
    the current body, are left alone. Before, the handing-on body's ``accepted`` settled the
    receiving body's redirect stage (its warning timer cancelled) from before its run began.
    """
    state.setdefault("accepted", at)
    if _before_period(state, at):
        return
    _end_stages(state, "accepted", at, rules, effects)


def _answered(state: State, event: dict[str, Any], at: float, rules: SlaRules,
              effects: Effects, _rp: Any) -> None:
    if state["status"] not in OPEN_STATUSES:
        ended = _ended_at(state)
        if _closed_before_its_answer(state, at):
            _answer_under_the_close(state, event, at, rules, effects)
        elif state["answered"] is not None and at == float(state["answered"]):
            # The same answer again under a new id (a resend by another system): it changes
            # nothing and is no error, so it is no dead letter. Its id is remembered, so a
            # replay does not judge it again against a later period (after a reopen it would
            # answer that period in 0 s).
            effects.outcome = REPEATED
        elif _answered_before(state, at):
            effects.outcome = REPEATED
        elif ended is not None and at > ended and not state.get("filed"):
            # Stamped after the period ended: the answer of a reopen that was sent before it
            # but has not arrived (re-keyed events reach the state in the order they are
            # re-published). Kept until that reopen comes (:func:`_apply_held`).
            _hold(state, "eans", at, event, effects, rules)
        else:
            _refuse(effects, NOT_OPEN, event,
                    f"{_state_detail(state)}; an answer needs an open answer period")
        return
    if _before_period(state, at):
        # Stamped before the reopen or redirect that started this period: an answer of an
        # earlier period (processed late, or resent), not of this one. Applied, it answered
        # the period before it began. The very answer of an earlier period is a repeat.
        if _answered_before(state, at):
            effects.outcome = REPEATED
            return
        _refuse(effects, NOT_OPEN, event,
                f"before the answer period it would answer began; {_state_detail(state)} "
                "(after a redirect or reopen)")
        return
    if any(float(entry[0]) <= at for entry in _held(state, "erop", rules)):
        # Stamped after a reopen kept for the answer or close it reopens: it answers that
        # reopen, not the period running now (whose end has not arrived either).
        _hold(state, "eans", at, event, effects, rules)
        return
    if state["status"] == "paused" and state["paused"] is not None:
        _resume(state, at, rules, effects)
    _retract_breach(state, at)
    on_time = not late(at, state["due"])
    state["status"] = "answered"
    state["answered"] = at
    state["on_time"] = on_time
    effects.cancel.extend(_timers(state, state["cycle"]))
    effects.cancel.append(Timer(state["id"], "escalation", 0.0, state["cycle"]))
    state.pop(ESCALATION_AT, None)
    # From the start of the period it answers: receipt by this body (registration, or the
    # redirect), or the reopen. From receipt, a reopened appeal's second answer counted the
    # first period and the time it lay answered (review of session 15).
    effects.answered = (max(0.0, at - _period_began(state)), on_time)
    state.setdefault("resp", []).append(
        [state["auth"], local_day(at, state["tz"]), effects.answered[0]])
    effects.answers += 1
    _end_stages(state, "answered", at, rules, effects)
    if not on_time:
        # Answered late, and the breach timer has not fired yet (a backlog or a replay):
        # the breach still happened and is reported exactly once.
        _fire(state, "breach", state["cycle"], rules, effects, at_ts=state["due"])
        # Usually the breach timer fired first and _fire reports "duplicate": that is about
        # the alert, not this event. The answer itself was applied and must be stored.
        effects.outcome = "applied"


def _answered_before(state: State, at: float) -> bool:
    """Is ``at`` the moment of the answer of a period a reopen ended (:data:`EARLIER_ANSWERS`)?

    Such an answer under a new id is that answer resent (another system, a sender replaying
    its log after the reopen): it changes nothing, as the same answer of a period still
    answered does (``repeated``). It was dead-lettered as ``not_open`` instead, though the
    sender had done nothing wrong. An answer of an earlier period at any other moment is new
    and stays refused.
    """
    return any(float(moment) == at for moment in state.get(EARLIER_ANSWERS) or ())


def _closed_before_its_answer(state: State, at: float) -> bool:
    """Did a close overtake this answer: closed unanswered, the answer stamped within the
    period, before the close?

    An authority system sends the answer and then the close; sent without the appeal's key
    (or with another), each is re-published keyed from the partition it was read on, so the
    close can reach the state first. The answer was then refused as ``not_open``: the appeal
    counted as closed unanswered (overdue when the close came late), and the body lost an
    on-time answer from its rating. A close that resumed a pause is left alone (the answer
    would have ended that pause earlier, and the deadline the close's resume gave cannot be
    taken back): such an answer stays ``not_open``.
    """
    closed = state.get("closed")
    if (state["status"] != "closed" or state["answered"] is not None or closed is None
            or not state["start"] <= at <= closed):
        return False
    return not any(entry[0] == "p" and entry[2] == closed for entry in state.get("adj", ()))


def _answer_under_the_close(state: State, event: dict[str, Any], at: float,
                            rules: SlaRules, effects: Effects) -> None:
    """Apply an answer that a close overtook (:func:`_closed_before_its_answer`), then the
    close again: the state the two give in the order they were stamped. The stages the close
    ended are open again for the answer (which may complete them at its own moment), and a
    breach the close reported is taken back when the answer came in time (the alert already
    sent stays sent, as for a breach tick processed before its answer)."""
    closed = float(state.pop("closed"))
    if state.get("stg"):
        state["stg"] = [[*e[:5], None, *e[6:]] if e[5] == closed else e for e in state["stg"]]
    state["status"] = "running"
    _answered(state, event, at, rules, effects, None)
    _closed(state, event, closed, rules, effects, None)
    effects.outcome = "applied"


def _extended(state: State, event: dict[str, Any], at: float, rules: SlaRules,
              effects: Effects, _rp: Any) -> None:
    """Move the running deadline by ``extension_days`` (59-FZ art. 12 p.2), once per body.

    An extension the rules refuse, or one of an appeal answered or closed, changes nothing and
    comes back as ``EXTENSION_REFUSED`` with the rule (or the status) in ``effects.detail``,
    for the agent to dead-letter: the body's system must learn that its deadline did not move.
    """
    days = event.get("extension_days") or 30
    if _extended_before_its_answer(state, at, rules):
        _extension_under_the_answer(state, event, at, rules, effects)
        return
    if state["status"] not in OPEN_STATUSES:
        # Answered or closed: no deadline to move. Refused like the rules' refusals (it was a
        # bare ``not_open``, counted and not dead-lettered: the body's system believed its
        # deadline moved, and an extension stamped before the answer but processed after it,
        # which would have made a late answer timely, left no trace).
        status = state["status"]
        ended = state["answered"] if status == "answered" else state.get("closed")
        when = f" (at {_local_iso(float(ended), state['tz'])})" if ended is not None else ""
        why = ""
        if status == "answered":
            why = ("; one stamped before the answer is applied under it only within the "
                   "period, by the deadline then running "
                   f"({_local_iso(float(state['due']), state['tz'])}), with the body's "
                   "extension unused, and not when the answer ended a pause")
        _refuse_extension(effects, f"the appeal is {status}{when}: only an open answer "
                                   f"period can be extended{why}")
        return
    if _before_period(state, at):  # the extension of an earlier period, processed late
        effects.outcome = BEFORE_PERIOD
        return
    allowed = rules.of(state).max_extensions
    if state["ext"] >= allowed:
        _refuse_extension(effects, f"extension {state['ext'] + 1} of this body: the policy "
                                   f"allows {allowed or 'none'}")
        return
    running_due = _running_due(state, at, rules)
    if late(at, running_due):
        # 59-FZ art. 12 p.2 extends a term that is still running; an extension declared after
        # the deadline would turn a breach into an answer "on time" after the fact.
        _refuse_extension(effects, f"declared at {_local_iso(at, state['tz'])}, after the "
                                   f"deadline {_local_iso(running_due, state['tz'])}: only a "
                                   "running term can be extended")
        return
    try:
        counted = _recounted_with(state, rules, ["e", int(days)])
        if counted is None:
            due = rules.extend(state["regime"], state["due"], int(days), state["tz"],
                               state["auth"], state["cat"], state["sub"], state["region"])
            warn = _stepped_warning(state, rules, [*state.get("adj", []), ["e", int(days)]],
                                    due)
        else:
            due, warn = counted
    except ValueError as exc:
        # The policy's limits (``extension_max_days``, a regime with no extension) or the
        # calendar's; the message names the numbers, never the appeal's content.
        _refuse_extension(effects, f"extension_days {days}: {exc}"[:200])
        return
    if due <= state["due"]:
        # The extension moves nothing (a short one whose last day the ``previous`` shift walks
        # back to the current deadline, e.g. +1 day from a Friday). Applied, it used up the one
        # extension 59-FZ allows and left the body no way to extend for real.
        _refuse_extension(effects, f"extension_days {days} moves nothing: the deadline stays "
                                   f"{_local_iso(state['due'], state['tz'])}")
        return
    _retract_breach(state, at)  # stamped in time: a breach its tick recorded was none
    state["ext"] += 1
    state.setdefault("adj", []).append(["e", int(days)])
    _move_deadline(state, due, warn, rules, effects, now=at)


def _extended_before_its_answer(state: State, at: float, rules: SlaRules) -> bool:
    """Did the answer overtake this extension: answered, the body's extension unused, the
    extension stamped within the period at or before both the answer and the deadline that
    ran then?

    Sent without the appeal's key, each is re-published keyed from the partition it was read
    on, so the answer can reach the state first. The extension was then refused and the
    answer, in time with it, counted late with a breach (and a resend was refused again). An
    answer that resumed a pause is left alone, as :func:`_closed_before_its_answer` leaves a
    close that did: the pause's end would move, and the deadline with it.
    """
    answered = state["answered"]
    if (state["status"] != "answered" or answered is None or state.get("filed")
            or state["ext"] >= rules.of(state).max_extensions
            or not state["start"] <= at <= float(answered) or late(at, float(state["due"]))):
        return False
    return not any(entry[0] == "p" and entry[2] == answered for entry in state.get("adj", ()))


def _extension_under_the_answer(state: State, event: dict[str, Any], at: float,
                                rules: SlaRules, effects: Effects) -> None:
    """Apply an extension that an answer overtook (:func:`_extended_before_its_answer`), then
    the answer again: the state the two give in the order they were stamped. A breach the late
    answer reported is taken back when the extended deadline holds it (the alert already sent
    stays sent). The answer's response time was counted when it was first applied and does not
    change: it is not reported again (``effects.answered``). Worked on a copy, so an extension
    the rules refuse leaves the state as it was, with the rule in ``effects.detail``."""
    trial = copy_state(state)
    assert trial is not None
    answered = float(trial["answered"])
    resp = trial.get("resp") or []
    if resp and resp[-1][1] == local_day(answered, trial["tz"]):
        resp.pop()  # the answer's own entry: added back, the same, by _answered below
    trial["status"] = "running"
    trial["answered"] = None
    trial.pop("on_time", None)
    inner = Effects()
    _extended(trial, event, at, rules, inner, None)
    if inner.outcome != "applied":
        effects.outcome, effects.detail = inner.outcome, inner.detail
        return
    _answered(trial, event, answered, rules, inner, None)
    state.clear()
    state.update(trial)
    effects.alerts.extend(inner.alerts)
    effects.timers.extend(inner.timers)
    effects.cancel.extend(inner.cancel)
    effects.outcome = "applied"


def _refuse_extension(effects: Effects, detail: str) -> None:
    effects.outcome = EXTENSION_REFUSED
    effects.detail = detail


def _local_iso(ts: float, tz: str) -> str:
    """A moment in the appeal's zone for a dead letter's detail (a day-counted deadline reads
    as 23:59:59 of its last day), to the second."""
    try:
        return dt.datetime.fromtimestamp(ts, zone(tz)).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError, KeyError):
        return f"{ts:.0f} (Unix seconds)"


def _running_due(state: State, at: float, rules: SlaRules) -> float:
    """The deadline as of ``at``: a pause that began before the deadline holds the clock, so
    while it lasts the deadline is the one a resume at ``at`` would give (the stored one moves
    only on resume), counted by the same rule as the resume and the replay."""
    paused = state["paused"]
    if state["status"] == "paused" and paused is not None and paused < state["due"]:
        counted = _recounted_with(state, rules, _pause_entry(paused, at, rules))
        if counted is not None:
            return counted[0]
        return rules.after_pause(state, state["due"], state["warn"], paused, at)[0]
    return float(state["due"])


def _redirected(state: State, event: dict[str, Any], at: float, rules: SlaRules,
                effects: Effects, resolve_parent: Callable[[str], str | None] | None) -> None:
    """The appeal goes to another body, whose answer clock starts now (DESIGN.md §2).

    Refused (``rejected``, nothing changes) when it names the body that already holds the
    appeal: that is no redirect, and applying it would restart the late body's own clock and
    clear its breach, so its open-overdue item vanished and a late answer scored on time.

    A body whose deadline has passed and that hands the appeal on keeps an unanswered-overdue
    outcome (``redirected_overdue``, on the redirect's local day), counted like an overdue
    close (DESIGN.md §4: not answering must never improve the figure; before, passing the
    appeal on took it out of the body's on-time share, which answering late would not have).
    A deadline passed before its breach timer fired (a backlog or a replay) is reported here,
    once, as ``_answered`` and ``_closed`` do: a redirect must not erase the breach, and the
    figures must not depend on whether the tick or the redirect was processed first.

    A redirect that names ``urgent`` counts the receiving body's period with it
    (:func:`_take_urgency`).

    One stamped before the redirect or reopen that began the running period (or before the
    redirect that gave an answered appeal to its body) is refused as ``BEFORE_PERIOD``, as a
    pause or an extension is: it belongs to an earlier period.
    """
    target = event.get("to_authority_id")
    if not target:
        effects.outcome = "rejected"
        return
    if _before_period(state, at) or (at < state["recv"] and state["recv"] != state["reg"]):
        # Stamped before the redirect (or reopen) that began the running period, or that gave
        # the answered appeal to its current body: an earlier body's redirect, processed late
        # (re-keyed events reach the state in the order they are re-published). Applied, it
        # moved the appeal back in time: A->B of day 3 after B->C of day 10 left the appeal
        # at B with C's timers cancelled.
        effects.outcome = BEFORE_PERIOD
        return
    if state["status"] not in OPEN_STATUSES:
        if state["status"] == "answered" and _restartable_stage(state, "redirected", rules):
            if target == state["auth"]:
                effects.outcome = "rejected"
                return
            _redirected_after_answer(state, event, target, at, rules, effects,
                                     resolve_parent)
            return
        _refuse(effects, NOT_OPEN, event,
                f"{_state_detail(state)}; only an open appeal is handed on")
        return
    if target == state["auth"]:
        effects.outcome = "rejected"
        return
    tz = state["tz"]
    _retract_breach(state, at)  # stamped in time: a breach its tick recorded was none
    if late(at, _running_due(state, at, rules)):
        # _fire arms an escalation timer of this cycle, which _start_period cancels below.
        _fire(state, "breach", state["cycle"], rules, effects, at_ts=state["due"])
        effects.outcome = "applied"  # "duplicate" was about the alert, not this event
    if state["breached"]:
        state.setdefault("outcomes", []).append(
            [state["auth"], local_day(at, tz), "redirected_overdue"])
    _end_stages(state, "redirected", at, rules, effects)  # the handing-on body's stages
    state.setdefault("prev", []).append([state["auth"], local_day(state["recv"], tz)])
    state["auth"] = target
    state["parent"] = resolve_parent(target) if resolve_parent else None
    state["recv"] = at
    _take_urgency(state, event)
    state["status"] = "running"
    state["paused"] = None
    state["ext"] = 0  # the receiving body's own extension (59-FZ art. 12 p.2)
    # The receiving body's clock runs in its own zone, as it would have had the appeal been
    # routed to it first (``workers.sla.agent.appeal_zone``).
    target_zone = rules.zone_of(target) if rules.zone_of is not None else None
    if target_zone:
        state["tz"] = target_zone
    _start_period(state, at, rules, effects)
    _start_stages(state, at, rules, effects, "redirected")


def _restartable_stage(state: State, kind: str, rules: SlaRules) -> bool:
    """Whether a tracked stage that the event ``kind`` starts again is still running (open
    and not settled): an incident's final answer after its first response."""
    specs = rules.stage_rules(state)
    return any(_armed(e) and e[0] in specs and kind in specs[e[0]].restarted_by
               for e in state.get("stg", ()))


def _redirected_after_answer(state: State, event: dict[str, Any], target: str, at: float,
                             rules: SlaRules, effects: Effects,
                             resolve_parent: Callable[[str], str | None] | None) -> None:
    """A redirect of an answered appeal whose stage it restarts still runs (policies.toml:
    an incident's or a call's ``final_answer`` is ``restarted_by`` ``redirected``).

    The appeal moves to ``target`` as any redirect moves it (the handing-on body keeps it in
    its "received", the receiving body receives it now, in its own zone) and the stage starts
    again at the receiving body. The answer period is over and stays so: its outcome is filed
    under ``outcomes`` for the body that answered (``state["filed"]``: not counted again as
    the current period's), and no new answer clock starts.
    """
    tz = state["tz"]
    if not state.get("filed"):
        state.setdefault("outcomes", []).extend(
            [auth, day, outcome] for auth, day, outcome in _period_outcome(state))
        state["filed"] = True
    _end_stages(state, "redirected", at, rules, effects)  # the handing-on body's stages
    state.setdefault("prev", []).append([state["auth"], local_day(state["recv"], tz)])
    state["auth"] = target
    state["parent"] = resolve_parent(target) if resolve_parent else None
    state["recv"] = at
    _take_urgency(state, event)
    target_zone = rules.zone_of(target) if rules.zone_of is not None else None
    if target_zone:
        state["tz"] = target_zone
    _start_stages(state, at, rules, effects, "redirected")


def _take_urgency(state: State, event: dict[str, Any]) -> None:
    """The urgency a redirect names (``urgent`` true or false; null or absent keeps the
    appeal's) for the receiving body's deadlines, counted from the redirect on; the handing-on
    body's ended with the urgency it had.

    Why: a triage decision that comes after ``APPEALS_TRIAGE_MAX_WAIT`` is such a redirect from
    the triage desk (``workers.route.agent._late_redirect``), and its ``urgent`` (a human's
    "no heating in frost") was lost there: the receiving body got the ordinary term of the
    classifier's unsure guess instead of the policy's ``urgent_answer``. Kept in the state, it
    holds for the periods after (a reopen) and for a recompute, as the routed record's does.
    """
    urgent = event.get("urgent")
    if isinstance(urgent, bool):
        state["urgent"] = urgent


def _paused(state: State, event: dict[str, Any], at: float, rules: SlaRules,
            effects: Effects, _rp: Any) -> None:
    if state["status"] != "running":
        _refuse(effects, NOT_OPEN, event,
                f"{_state_detail(state)}; only a running answer period is paused")
        return
    if at < state["start"]:
        effects.outcome = BEFORE_PERIOD
        return
    resume_at = _take_early_resume(state, at)
    _retract_breach(state, at)
    if late(at, state["due"]):
        # Paused after the deadline before the breach timer fired (a backlog or a replay):
        # the breach happened and is reported once, as in ``_answered`` and ``_closed``.
        # Before, the pause cancelled the timer and the late appeal showed neither a breach
        # nor an open-overdue item for as long as the pause lasted.
        _fire(state, "breach", state["cycle"], rules, effects, at_ts=state["due"])
        effects.outcome = "applied"
    state["status"] = "paused"
    state["paused"] = at
    effects.cancel.extend(_timers(state, state["cycle"]))
    if resume_at is not None:
        # Its resume came first (see _resumed): the pause held from ``at`` to ``resume_at``.
        _resume(state, resume_at, rules, effects)


def _resumed(state: State, event: dict[str, Any], at: float, rules: SlaRules,
             effects: Effects, _rp: Any) -> None:
    """End the pause; or, on a running appeal, keep the resume for the pause it ends.

    Events of one appeal can arrive out of order: those without the appeal's key (or on
    another partition) are re-published keyed once, each from the partition it was read on,
    so a pause and its resume sent together by an authority's nightly sync can be re-keyed
    in either order. A resume that overtook its pause was dropped ("not_open"), and the pause
    then held the appeal with no timers for good: its deadline never came. Now such a resume
    is kept (``eres``, at most :data:`MAX_EARLY_RESUMES`), and a pause stamped at or before
    it applies both; a pause stamped after every kept resume is an ordinary pause. One more
    is refused (:data:`EARLY_RESUME_OVERFLOW`, the kept ones named in ``effects.detail``).
    """
    if state["status"] != "paused":
        if state["status"] != "running":
            _refuse(effects, NOT_OPEN, event,
                    f"{_state_detail(state)}; only a paused answer period is resumed")
            return
        early = state.get("eres") or []
        if len(early) >= MAX_EARLY_RESUMES:
            tz = state["tz"]
            effects.outcome = EARLY_RESUME_OVERFLOW
            effects.detail = (
                f"resumed stamped {event['at']}: {len(early)} resumes of appeal {state['id']} "
                "already wait for pauses that have not arrived (stamped "
                f"{_local_iso(float(min(early)), tz)} to {_local_iso(float(max(early)), tz)}); "
                "resend it after its pause")
            return
        state["eres"] = sorted([*early, at])
        effects.outcome = "early"
        return
    _resume(state, at, rules, effects)


def _take_early_resume(state: State, paused_at: float) -> float | None:
    """The earliest kept resume stamped at or after ``paused_at`` (removed), or None."""
    early = state.get("eres")
    if not early:
        return None
    for i, resume_at in enumerate(early):
        if resume_at >= paused_at:
            del early[i]
            if not early:
                del state["eres"]
            return float(resume_at)
    return None


def _resume(state: State, at: float, rules: SlaRules, effects: Effects) -> None:
    """The pause ends: the deadline and the warning move by the time the pause held, in the
    appeal's policy unit (``SlaRules.after_pause``, ``deadlines.compute.pause_shift``); a
    pause that began after the deadline cannot cure the breach."""
    paused_from = state["paused"] or at
    state["status"] = "running"
    state["paused"] = None
    entry = _pause_entry(paused_from, at, rules)
    counted = _recounted_with(state, rules, entry)
    state.setdefault("adj", []).append(entry)
    if counted is None:
        due, warn = rules.after_pause(state, state["due"], state["warn"], paused_from, at)
    else:
        due, warn = counted
    _move_deadline(state, due, warn, rules, effects, now=at)


def _pause_entry(paused_from: float, resumed_at: float, rules: SlaRules) -> list[Any]:
    """The ``adj`` entry of a pause; marked as counted in the policy's unit when it is."""
    entry: list[Any] = ["p", paused_from, resumed_at]
    if rules.pause is not None:
        entry.append(PAUSE_IN_UNITS)
    return entry


def _recounted_with(state: State, rules: SlaRules,
                    entry: list[Any]) -> tuple[float, float] | None:
    """(due, warning) of the current period with ``entry`` added to its adjustments, counted
    from the statutory last day (:meth:`SlaRules.recounted`); None when the step-by-step
    arithmetic applies instead: a period not recounted, or one whose recount no longer gives
    the stored deadline (the policy or the calendar changed since, or an extension the
    changed policy no longer allows). Applying today's rules to the whole period here moved
    the deadline of a live appeal, even to before its pause began; that is ``appeals sla
    recompute``'s job. ValueError: ``entry`` is an extension the policy does not allow."""
    try:
        base = rules.recounted(state, state.get("adj", []))
    except ValueError:
        return None
    if base is None or abs(base[0] - float(state["due"])) >= 0.5:
        return None
    return rules.recounted(state, [*state.get("adj", []), entry])


def _closed(state: State, event: dict[str, Any], at: float, rules: SlaRules,
            effects: Effects, _rp: Any) -> None:
    if _before_period(state, at):
        # The close of an earlier period (before the reopen or redirect that began this one),
        # processed late: it closed the running period before it began and cancelled its
        # timers, and as a second close it moved ``closed`` back into the earlier period.
        _refuse(effects, NOT_OPEN, event,
                f"before the answer period it would close began; {_state_detail(state)} "
                "(after a redirect or reopen)")
        return
    first = (state["status"] in OPEN_STATUSES or state.get("closed") is None
             or _before_period(state, float(state["closed"])))
    if state["status"] in OPEN_STATUSES:
        if state["status"] == "paused" and state["paused"] is not None:
            _resume(state, at, rules, effects)
        _retract_breach(state, at)
        if late(at, state["due"]):
            # Closed unanswered after the deadline before the breach timer fired (a backlog or
            # a replay): the breach still happened and is reported exactly once, as in
            # ``_answered``; usually the timer fired first and this is a duplicate.
            _fire(state, "breach", state["cycle"], rules, effects, at_ts=state["due"])
            effects.outcome = "applied"
        effects.cancel.extend(_timers(state, state["cycle"]))
        effects.cancel.append(Timer(state["id"], "escalation", 0.0, state["cycle"]))
        state.pop(ESCALATION_AT, None)
    _end_stages(state, "closed", at, rules, effects)
    state["status"] = "closed" if state["status"] != "answered" else "answered"
    # A second close of the period (a resend under a new id, another system) keeps the
    # earliest moment: moved to the later one, an answer stamped between them counted as given
    # before the close when processed after both, and as too late when processed between them
    # (review of session 14). A close of an open appeal is always the first of its period,
    # and so is one finding ``closed`` of an earlier period (before a reopen): it is replaced.
    if first:
        state["closed"] = at
    elif at < float(state["closed"]):
        _closed_earlier(state, at, rules)


def _closed_earlier(state: State, at: float, rules: SlaRules) -> None:
    """A second close of the period, stamped before the close applied: the period ended at
    ``at``, as had the two come in order.

    Before, only ``closed`` moved back: a breach the later close had reported (closed
    unanswered past the deadline before the breach timer fired) stayed, and the appeal counted
    as closed overdue, with a breach, though it was closed in time. Now such a breach is taken
    back when ``at`` is in time (its alert stays sent, as for an answer under a close). When
    the first close ended a pause, the pause ends at ``at`` instead (or, stamped before the
    pause, there was none in the period) and the deadline is counted again. The stages the
    first close ended end at ``at``, so an answer processed later finds them as in order
    (:func:`_answer_under_the_close`). No timers change: the appeal was and stays ended.
    """
    old = float(state["closed"])
    if state.get("stg"):
        state["stg"] = [[*e[:5], at, *e[6:]] if e[5] == old else e for e in state["stg"]]
    state["closed"] = at
    if state["status"] != "closed":  # answered: the answer, not the close, decided the breach
        return
    adj = list(state.get("adj") or ())
    if adj and adj[-1][0] == "p" and float(adj[-1][2]) == old:
        _pause_ended_earlier(state, adj, at, rules)
    _retract_breach(state, at)


def _pause_ended_earlier(state: State, adj: list[list[Any]], at: float,
                         rules: SlaRules) -> None:
    """The pause the first close ended (the last of ``adj``, the period's adjustments) ended
    at ``at``, an earlier close; dropped when ``at`` is before it began. The deadline is that
    of the period's start and adjustments (:func:`replay_deadline`), provided today's rules
    still give the stored one; if they do not (a calendar or policy changed since), it is
    left as it is, as a recompute leaves a closed appeal's."""
    last = adj[-1]
    kept = adj[:-1] if at < float(last[1]) else [*adj[:-1], [*last[:2], at, *last[3:]]]
    try:
        if abs(replay_deadline(state, rules)[0] - float(state["due"])) >= 0.5:
            return
        due, warn = replay_deadline({**state, "adj": kept}, rules)
    except ValueError:
        return
    state.update(adj=kept, due=due, warn=warn)


def _reopened(state: State, event: dict[str, Any], at: float, rules: SlaRules,
              effects: Effects, _rp: Any) -> None:
    """A new answer period at the same body; the ended period's outcome stays counted.

    Before, a reopen dropped the earlier answer from the figures, so a late answer (or an
    overdue close) followed by a reopen and a quick answer scored on time. Now the ended
    period's outcome moves to ``outcomes`` unchanged (the figures do not move at the reopen),
    and the new period adds its own. The extension count is kept (see ``_start_period``).

    A reopen stamped before the answer or close that ended the period (two systems' clocks a
    little apart, a register kept by the date) reopens it at that end: the new period cannot
    begin before the answer it reopens. It began at the reopen's stamp, and a replay of a
    reopen given up (``_apply_held``) after a redirect started a period before the redirect;
    one stamped before the running period began is refused (``before_period``), as when the
    period is open.
    """
    ended = _ended_at(state)
    if state["status"] not in OPEN_STATUSES and ended is not None and at < ended:
        if _before_period(state, at):
            effects.outcome = BEFORE_PERIOD
            return
        at = ended
    if state["status"] in OPEN_STATUSES:
        if _before_period(state, at):
            effects.outcome = BEFORE_PERIOD
        elif at < state["start"]:
            _refuse(effects, NOT_CLOSED, event,
                    f"{_state_detail(state)}; a reopen needs an answered or closed appeal")
        else:
            # Stamped within the open period: the reopen of an answer or close that was sent
            # before it but has not arrived. Kept until that comes (:func:`_apply_held`).
            _hold(state, "erop", at, event, effects, rules)
        return
    state.setdefault("outcomes", []).extend(
        [auth, day, outcome] for auth, day, outcome in _period_outcome(state))
    if state["answered"] is not None:
        state.setdefault(EARLIER_ANSWERS, []).append(state["answered"])
    state["status"] = "running"
    state["answered"] = None
    state.pop("on_time", None)
    state.pop("filed", None)
    state["reopened"] = state.get("reopened", 0) + 1
    _end_stages(state, "reopened", at, rules, effects)  # a run it restarts past its deadline
    _start_period(state, at, rules, effects)
    _start_stages(state, at, rules, effects, "reopened")


_HANDLERS: dict[str, Callable[..., None]] = {
    "accepted": _accepted,
    "answered": _answered,
    "extended": _extended,
    "redirected": _redirected,
    "paused": _paused,
    "resumed": _resumed,
    "closed": _closed,
    "reopened": _reopened,
}


def replay_deadline(state: State, rules: SlaRules) -> tuple[float, float]:
    """(due, warn) of the current period from its start and adjustments, with today's rules.

    The same arithmetic as the incremental transitions (``_start_period``, ``_extended``,
    ``_resume``), so with unchanged calendar and policies it gives back the stored deadline.
    A pause counts in the policy's unit when its entry says it was applied so
    (``PAUSE_IN_UNITS``); a pause stored by the version that added wall-clock time keeps that
    meaning, so a recompute does not move (e.g. bring forward into a breach) a deadline the
    body was given for it. Raises ValueError when an extension is no longer allowed by the
    (changed) policy.
    """
    # A period without adjustments has its first deadline either way; the step path has it
    # from the per-day cache (a recompute of a million open appeals recounted each: 4x).
    counted = rules.recounted(state, state["adj"]) if state.get("adj") else None
    if counted is not None:
        return counted
    start = state["start"]
    due = rules.due(state["regime"], start, state["tz"], state["urgent"], state["auth"],
                    state["cat"], state["sub"], state["region"])
    warn = rules.warn_at(state, start, due)
    for i, adj in enumerate(state.get("adj", [])):
        if adj[0] == "e":
            due = rules.extend(state["regime"], due, int(adj[1]), state["tz"], state["auth"],
                               state["cat"], state["sub"], state["region"])
            warn = _stepped_warning(state, rules, state["adj"][:i + 1], due)
        elif adj[0] == "p":
            in_units = len(adj) > 3 and adj[3] == PAUSE_IN_UNITS
            due, warn = rules.after_pause(state, due, warn, float(adj[1]), float(adj[2]),
                                          in_units)
    return due, warn


def _stepped_warning(state: State, rules: SlaRules, adj: list[list[Any]], due: float) -> float:
    """The warning of the current period with the adjustments ``adj`` (its extensions and
    pauses, in order) by the step-by-step arithmetic, whose deadline is ``due``; never after
    it.

    ``share`` of the period with every extension, then moved by each pause as
    :meth:`SlaRules.after_pause` moves it: paused time is not time used, whatever the order
    of the events. A pause enters ``adj`` at its resume, and the warning of an extension
    declared after it was ``share`` of the whole span, the pause counted as used, while one
    declared during the pause was moved by it. Without a pause before an extension, the
    share of the period up to ``due``, as it always was.
    """
    start = state["start"]
    seen_pause = False
    for entry in adj:
        if entry[0] == "p":
            seen_pause = True
        elif entry[0] == "e" and seen_pause:
            break
    else:
        return rules.warn_at(state, start, due)
    moved = rules.due(state["regime"], start, state["tz"], state["urgent"], state["auth"],
                      state["cat"], state["sub"], state["region"])
    for entry in adj:
        if entry[0] == "e":
            moved = rules.extend(state["regime"], moved, int(entry[1]), state["tz"],
                                 state["auth"], state["cat"], state["sub"], state["region"])
    warn = rules.warn_at(state, start, moved)
    for entry in adj:
        if entry[0] == "p":
            in_units = len(entry) > 3 and entry[3] == PAUSE_IN_UNITS
            moved, warn = rules.after_pause(state, moved, warn, float(entry[1]),
                                            float(entry[2]), in_units)
    return min(warn, due)


def recompute(state: State, rules: SlaRules, now: float) -> Effects:
    """Recompute an open appeal's deadline after a calendar or policy change.

    Nothing changes (outcome ``unchanged``) when the due moment is the same, so a repeated or
    replayed recompute request is harmless. Otherwise the cycle is bumped (ticks of the old
    deadline become stale), the new timers come back as effects, and ``effects.deadline``
    carries (old, new). An alert already sent whose moment has passed under the new deadline
    too is carried into the new cycle rather than sent again: the supervisor already knows.
    A breach whose new deadline lies ahead is cured (like an extension cures it); the breach
    stays in the appeal's history (``bdays``).

    A breach not escalated yet escalates after the policy's delay in force now: a changed
    ``escalation_after_hours`` moves its stored moment (:data:`ESCALATION_AT`) even when the
    deadline stays, and the escalation is armed again in a new cycle (a tick of the old moment,
    already on its way, is stale).
    """
    effects = Effects()
    stages_moved = _recompute_stages(state, rules, now, effects)
    if state["status"] not in OPEN_STATUSES:
        effects.outcome = "recomputed" if stages_moved else "not_open"
        return effects
    try:
        due, warn = replay_deadline(state, rules)
    except ValueError:
        effects.outcome = "recomputed" if stages_moved else "rejected"
        return effects
    old_due = state["due"]
    escalation_after = rules.of(state).escalation_after
    if abs(due - old_due) < 0.5:
        moved = _recompute_escalation(state, rules, now, escalation_after, effects)
        effects.outcome = "recomputed" if stages_moved or moved else "unchanged"
        return effects
    _move_deadline(state, due, warn, rules, effects, now, escalation_after)
    effects.deadline = (old_due, due)
    effects.outcome = "recomputed"
    return effects


def _recompute_escalation(state: State, rules: SlaRules, now: float, escalation_after: float,
                          effects: Effects) -> bool:
    """Move the unsent escalation of a breach whose deadline stays to ``escalation_after``
    after it; whether it moved. A state stored without its moment has none to compare: its
    escalation is left to the policy in force when it fires (:func:`escalation_at`)."""
    stored = state.get(ESCALATION_AT)
    breached = state["breached"]
    if (stored is None or not breached or f"escalation:{state['cycle']}" in state["alerts"]
            or abs(float(breached) + escalation_after - float(stored)) < 0.5):
        return False
    if state["status"] != "running":
        state[ESCALATION_AT] = float(breached) + escalation_after  # armed by the resume
        return True
    if late(state["due"], now):
        return False  # the breach is not due by this clock: nothing to carry
    _move_deadline(state, state["due"], state["warn"], rules, effects, now, escalation_after)
    return True


def _recompute_stages(state: State, rules: SlaRules, now: float, effects: Effects) -> bool:
    """New deadlines for the open tracked stages, from each stage's start, as
    :func:`recompute` does for the answer: a moved stage runs as ``k + 1``; an alert already
    sent whose moment has passed under the new deadline too is carried, not sent again."""
    specs = rules.stage_rules(state)
    if state.get("status") == "closed" or not state.get("stg"):
        return False
    assert rules.stage_due is not None
    moved = False
    out: list[list[Any]] = []
    for entry in state["stg"]:
        name, start, old_due, old_warn, k, ended = entry[:6]
        if ended is not None:
            out.append(entry)
            continue
        if name not in specs:
            # The policy no longer tracks it: it ends now, quietly (its timers go).
            if _armed(entry):
                effects.cancel.extend(_stage_timers(state, entry))
            out.append([*entry[:5], now, *entry[6:]])
            moved = True
            continue
        due, warn = rules.stage_due(state, name, start, rules.of(state).warning_share)
        if abs(due - old_due) < 0.5 and abs(warn - old_warn) < 0.5:
            out.append(entry)
            continue
        moved = True
        if not _armed(entry):  # settled: no timers, but a later completion counts from it
            out.append([name, start, due, warn, *entry[4:]])
            continue
        effects.cancel.extend(_stage_timers(state, entry))
        new = [name, start, due, warn, int(k) + 1, None, *entry[6:]]
        carried = {lvl for lvl, moment in (("warning", warn), ("breach", due))
                   if f"{name}.{lvl}:{k}" in state["alerts"] and moment <= now}
        for lvl in sorted(carried):
            _carry(state, f"{name}.{lvl}:{k}", f"{name}.{lvl}:{new[4]}")
        if "breach" not in carried:
            effects.timers.extend(t for t in _stage_timers(state, new)
                                  if t.kind.rsplit(".", 1)[1] not in carried)
        out.append(new)
    state["stg"] = out
    return moved


def apply_tick(state: State, kind: str, cycle: int, rules: SlaRules) -> Effects:
    """A timer fired. Stale (old cycle, closed appeal) or repeated ticks change nothing."""
    effects = Effects()
    if kind == HELD_TIMER:
        return expire_held(state, cycle, rules, effects)
    if "." in kind:
        return _stage_tick(state, kind, cycle, rules, effects)
    if cycle != state["cycle"] or state["status"] != "running":
        effects.outcome = "stale"
        return effects
    if kind == "warning" and f"breach:{cycle}" in state["alerts"]:
        effects.outcome = "stale"  # a period's warning never follows its breach
        return effects
    due_ts = {"warning": state["warn"], "breach": state["due"]}.get(kind)
    if kind == "escalation":
        if not state["breached"]:
            effects.outcome = "stale"
            return effects
        due_ts = escalation_at(state, lambda st: rules.of(st).escalation_after)
    if due_ts is None:
        effects.outcome = "ignored"
        return effects
    _fire(state, kind, cycle, rules, effects, at_ts=due_ts, timer=True)
    return effects


def _stage_tick(state: State, kind: str, k: int, rules: SlaRules, effects: Effects) -> Effects:
    """A stage timer fired: stale unless the stage is still open and tracked in run ``k``
    (and, for a warning, its breach has not been reported)."""
    name, level = kind.rsplit(".", 1)
    entry = next((e for e in state.get("stg", ()) if e[0] == name), None)
    if (entry is None or entry[4] != k or not _armed(entry) or state["status"] == "closed"
            or name not in rules.stage_rules(state)
            or level not in ("warning", "breach")
            or (level == "breach" and not entry[6])
            or (level == "warning" and f"{name}.breach:{k}" in state["alerts"])):
        effects.outcome = "stale"
        return effects
    if not _fire_stage(state, entry, level, effects, timer=True):
        effects.outcome = "duplicate"
    return effects


def _fire(state: State, level: str, cycle: int, rules: SlaRules, effects: Effects,
          at_ts: float, timer: bool = False) -> None:
    key = f"{level}:{cycle}"
    if key in state["alerts"]:
        effects.outcome = "duplicate"
        return
    state["alerts"].append(key)
    if level == "breach":
        state["breached"] = at_ts
        state["bdays"].append([local_day(at_ts, state["tz"]), state["auth"], cycle])
        if state["status"] == "running":
            state[ESCALATION_AT] = at_ts + rules.of(state).escalation_after
            effects.timers.append(Timer(state["id"], "escalation", state[ESCALATION_AT], cycle))
    elif level == "escalation":
        state["escalated"] = at_ts
        state["edays"].append([local_day(at_ts, state["tz"]), state["auth"], cycle])
        sent = state.pop(ESCALATION_SENT, None)
        if sent is not None:
            # Its alert was sent before a pause took it back (_move_deadline): recorded, not
            # sent again, and carried under the id it was sent with (a state stored before
            # holds 1, no id). The state changed: the agent stores it with its figures.
            if isinstance(sent, str):
                _note_carried(state, key, sent)
            effects.outcome = RECORDED
            return
    notify = state["auth"]
    if level == "escalation":
        notify = state.get("parent") or state["auth"]
    effects.alerts.append(Alert(level, cycle, at_ts, notify, state["auth"], from_timer=timer))


#: The day counters an answer period's outcome adds to its body's figures.
OUTCOME_COUNTERS: dict[str, tuple[str, ...]] = {
    "answered": ("answered",),
    "answered_on_time": ("answered", "answered_on_time"),
    # Closed unanswered past its deadline, on the day it closed: it still counts against the
    # on-time share (DESIGN.md §4: not answering must never improve the figure).
    "closed_overdue": ("closed_overdue",),
    # Handed on to another body past the deadline, on the day of the redirect: the same.
    "redirected_overdue": ("redirected_overdue",),
}


def _period_outcome(state: State) -> list[tuple[str, str, str]]:
    """(authority, local day, outcome) of the current answer period, if it has one yet.

    The one place a period's outcome is read from the state, both for the figures and when a
    reopen files the period under ``outcomes``: so the figures stay the same across a reopen.
    """
    auth, tz = state["auth"], state["tz"]
    if state.get("filed"):  # filed under ``outcomes`` by a redirect after the answer
        return []
    if state["answered"] is not None:
        outcome = "answered_on_time" if state.get("on_time") else "answered"
        return [(auth, local_day(state["answered"], tz), outcome)]
    if state["status"] == "closed" and state["breached"]:
        return [(auth, local_day(state.get("closed") or state["breached"], tz),
                 "closed_overdue")]
    return []


def contributions(state: State, *, earlier_bodies: bool = True) -> list[tuple[str, str, str]]:
    """What this appeal adds to its authorities' figures: (authority, day or "", counter).

    Aggregates are the sum of these over all appeals of a partition, so a state change
    updates them by the difference of old and new contributions, and a rebuild after
    recovery is just the sum again: the figures can never drift from the per-appeal state.
    """
    auth = state["auth"]
    tz = state["tz"]
    out = [(auth, local_day(state["recv"], tz), "received")]
    if earlier_bodies:  # bodies that received it before a redirect received it too
        out.extend((prev_auth, day, "received") for prev_auth, day in state.get("prev", ()))
    if state["status"] in OPEN_STATUSES:
        out.append((auth, "", "open"))
        if state["breached"]:
            out.append((auth, "", "open_overdue"))
    # Every ended answer period counts (a reopen, a redirect past the deadline), then the
    # current one: a later period can add to the figures, never erase an earlier outcome.
    for period_auth, day, outcome in [*state.get("outcomes", ()), *_period_outcome(state)]:
        out.extend((period_auth, day, counter) for counter in OUTCOME_COUNTERS[outcome])
    out.extend(_charged(auth, entry, "breaches") for entry in state["bdays"])
    out.extend(_charged(auth, entry, "escalations") for entry in state["edays"])
    return out


def _charged(auth: str, entry: str | list[str], counter: str) -> tuple[str, str, str]:
    """A breach or escalation entry as a contribution of the body that was responsible."""
    if isinstance(entry, str):  # a state written before entries named the authority
        return auth, entry, counter
    return entry[1], entry[0], counter


def responses(state: State) -> list[tuple[str, str, float]]:
    """(authority, local day, seconds) of every answer, for the response-time sketches.

    A pure function of the state like :func:`contributions`, so a rebuild after recovery
    gives the sketches the live path built: a reopened appeal answered twice has two samples
    either way. States from before answers were recorded give their one (last) answer.
    """
    if "resp" in state:
        return [(a, d, float(s)) for a, d, s in state["resp"]]
    if state.get("answered") is None:
        return []
    return [(state["auth"], local_day(state["answered"], state["tz"]),
             max(0.0, state["answered"] - _period_began(state)))]


def _period_began(state: State) -> float:
    """When the answer period being answered began for the body answering it."""
    return max(state["recv"], state.get("start") or state["recv"])


def subjects(state: State) -> list[str]:
    """Every key this appeal's figures are counted under: its authority, then second keys.

    Second keys carry a prefix (``muni:``, ``cat:``) so they can never collide with an
    authority id; states written before municipalities were recorded simply lack that key.
    """
    out = [state["auth"]]
    muni = state.get("muni")
    if muni:
        out.append(f"muni:{muni}")
    cat = state.get("cat")
    if cat:
        out.append(f"cat:{cat}")
    return out


def keyed_contributions(state: State) -> list[tuple[str, str, str]]:
    """:func:`contributions` repeated under every subject of :func:`subjects`.

    Still a pure function of the state, so the delta maintenance and the rebuild after
    recovery stay exact for the second keys too.

    The second keys are bucketed on the local days the API cuts a place's or a category's
    windows on: a place's in its region's zone, a category's in the default region's, both
    as the routing rules name them and kept in the state when it was made (``mtz``, ``ctz``;
    :meth:`RoutingRules.day_zone`, the function the API cuts with). Bucketed on the day in the
    zone of a body with a zone of its own, an answer at 22:00 in Barnaul, 01:00 in
    Vladivostok, went to the next day and stayed out of the place's and the category's 1d
    figures until the region's day turned (review of session 17); bucketed in the geo
    catalogue's capital zone, rules naming another zone for their region had the same
    effect. Days the state keeps as dates only (earlier periods' outcomes, breaches,
    escalations) cannot be moved to another zone and stay on the day of the body's zone;
    the registration and the current period's outcome are moved.
    """
    base = contributions(state)
    extra = subjects(state)[1:]
    if not extra:
        return base
    out = list(base)
    moved: dict[str, list[tuple[str, str, str]]] = {}
    for subject in extra:
        zone = _figures_zone(state, subject)
        if zone not in moved:
            moved[zone] = _counted_once(state, base, zone)
        out.extend((subject, day, counter) for _a, day, counter in moved[zone])
    return out


def _counted_once(state: State, base: list[tuple[str, str, str]],
                  zone: str) -> list[tuple[str, str, str]]:
    """The appeal's contributions as a place or a category counts them, on ``zone``'s days."""
    if zone == state["tz"] and not state.get("prev"):
        return base
    once = contributions(state if zone == state["tz"] else {**state, "tz": zone},
                         earlier_bodies=False)
    # A place or a category received the appeal once, however many bodies it passed
    # through, on the day it was registered: counted on the current body's receipt, a
    # redirect moved it to the redirect's day and changed past windows of the place
    # (review of session 15).
    if state.get("reg") is not None:
        once[0] = (once[0][0], local_day(state["reg"], zone), "received")
    elif state.get("prev"):  # no registration moment: the first body's day, as before
        once[0] = (once[0][0], state["prev"][0][1], "received")
    return once


def _figures_zone(state: State, subject: str) -> str:
    """The zone of ``subject``'s days (a ``muni:`` or ``cat:`` key): the one the state was
    made with, or for a state stored before it kept one, the region's capital zone it was
    bucketed in then (so its figures are maintained as they were built)."""
    kept = state.get("ctz" if subject.startswith("cat:") else "mtz")
    if isinstance(kept, str) and kept:
        return kept
    return _region_zone(str(state.get("region") or ""))


@lru_cache(maxsize=256)
def _region_zone(region: str) -> str:
    """The zone of ``region``'s capital (Moscow for an unknown one): the days a state stored
    before it kept its figures' zones (``mtz``, ``ctz``) had its place and category on."""
    from workers.geo.regions import region_timezone_or_moscow  # data loaded on first use

    return region_timezone_or_moscow(region)
