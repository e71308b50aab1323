"""New campaign → *Send a test*: the first rendered rows to the member's own numbers.

After the preview and before the campaign is sent, the member types one to five of their own
numbers (E.164, or national in the campaign's default country; remembered for the session)
and chooses how many of the first rendered rows (1–5) to receive. Each chosen row's text goes
to each of those numbers through the Send page's money-safe path — recorded as pending with
its clientRef first (``ledger.begin_send``), then sent and answered by
:func:`console.messaging.send.deliver` — with today's caps and the balance checked before,
never through the campaign: no campaign is created, planned or frozen by a test.

A test is marked in the ledger (``sends.test`` and its task's ``tasks.test``, migration 0005),
audited as ``campaign_test``, counted in Spend as "of which tests" and labelled on the Send
page's recent sends. A test number that is opted out is still left out (the text is the
campaign's marketing content), and said so. A test over the team's approval threshold is not
sent (it would wait for approval): fewer rows or numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from console import access
from console.messaging import approval_rules as rules
from console.messaging.send import Delivery, cap_check, deliver, session_tag, show_check
from console.shell import Console, account_changed, advice
from console.views import money, plain
from kedacore.api.types import Pricing
from kedacore.campaign.preview import CampaignPreview
from kedacore.money import to_micros
from kedacore.phones import parse_number
from kedacore.team import Permission
from kedacore.words import counted

MAX_NUMBERS = 5  # own numbers a test goes to
MAX_ROWS = 5  # first rendered rows a test sends
NUMBERS = "campaigns_test_numbers"  # the widget
SAVED = "campaigns_test_saved"  # the numbers typed, kept for the session
ROWS = "campaigns_test_rows"
LAST = "campaigns_test_last"  # this session's last test: its outcomes
TOKENS = "campaigns_test_tokens"  # each test's clientRef token, by its texts and numbers
_SPLIT = re.compile(r"[,;\n]+")


@dataclass(frozen=True, slots=True)
class OwnSend:
    """One request of a test: one row's text to the own numbers of one country."""

    row: int  # the file's row number
    country: str
    sender: str | None
    content: str
    numbers: tuple[str, ...]
    segments: int
    estimate: Decimal


@dataclass(frozen=True, slots=True)
class OwnPlan:
    """What a test sends and costs; ``problem`` (a sentence) when it cannot be sent."""

    sends: tuple[OwnSend, ...] = ()
    opted_out: tuple[str, ...] = ()
    problem: str = ""

    @property
    def messages(self) -> int:
        return sum(len(t.numbers) for t in self.sends)

    @property
    def total(self) -> Decimal:
        return sum((t.estimate for t in self.sends), Decimal(0))


def own_numbers(text: str, country: str | None) -> tuple[list[tuple[str, str]], str]:
    """The typed numbers as (E.164, country), each once; or a sentence saying what is wrong."""
    typed = [part.strip() for part in _SPLIT.split(text or "") if part.strip()]
    if not typed:
        return [], "Type your own number to send a test to."
    if len(typed) > MAX_NUMBERS:
        return [], f"A test goes to at most {MAX_NUMBERS} numbers: {len(typed)} were typed."
    found: dict[str, str] = {}
    for raw in typed:
        parsed = parse_number(raw, None if raw.startswith(("+", "00")) else country)
        if not parsed.valid or not parsed.e164 or not parsed.country:
            return [], (
                f"{raw} is not a phone number ({parsed.error}): type it in international form "
                f"(+1 206 555 0100) or as a national number of {country or 'the default country'}."
            )
        found.setdefault(parsed.e164, parsed.country)
    return list(found.items()), ""


def plan_test(
    preview: CampaignPreview,
    rows: int,
    numbers: Sequence[tuple[str, str]],
    pricing: Pricing,
    suppressed: Callable[[Iterable[str]], Collection[str]],
) -> OwnPlan:
    """The first ``rows`` rendered rows to each of ``numbers`` (opted-out ones left out), one
    request per row and country, each priced at its number's country."""
    out = suppressed([e164 for e164, _ in numbers]) if numbers else set()
    opted = tuple(e164 for e164, _ in numbers if e164 in out)
    by_country: dict[str, list[str]] = {}
    for e164, country in numbers:
        if e164 not in out:
            by_country.setdefault(country, []).append(e164)
    if numbers and not by_country:
        return OwnPlan(opted_out=opted, problem="Every number typed is opted out.")
    sends = []
    for row in preview.rows[: max(1, min(rows, MAX_ROWS))]:
        for country, own in by_country.items():
            price = pricing.price_for(country)
            if price is None:
                return OwnPlan(opted_out=opted, problem=f"Country {country} has no price.")
            estimate = price * row.segments * len(own)
            sends.append(
                OwnSend(row.row, country, row.sender, row.text, tuple(own), row.segments, estimate)
            )
    return OwnPlan(tuple(sends), opted)


def token_of_test(plan: OwnPlan, *, fresh: bool = False) -> str:
    """The clientRefs' token of this test: one per test (its texts and numbers) in the session,
    so a second click of the same test finds its sends recorded and sends nothing again
    (``fresh``: a new one, after a test the service refused outright)."""
    fingerprint = hashlib.sha256(
        json.dumps([(t.country, t.sender, t.content, t.numbers) for t in plan.sends]).encode()
    ).hexdigest()
    tokens = st.session_state.setdefault(TOKENS, {})
    if fresh:
        tokens[fingerprint] = secrets.token_hex(8)
    return tokens.setdefault(fingerprint, secrets.token_hex(8))


def send_tests(console: Console, plan: OwnPlan, actor: str) -> list[Delivery | str]:
    """Each request recorded as a pending test send with its own clientRef, then sent and
    answered (``deliver``); a sentence for one that could not be recorded (nothing sent)."""
    currency = console.currency
    batch = token_of_test(plan)
    before = [console.ledger.send_record(f"test-{batch}-{i}") for i in range(len(plan.sends))]
    if any(before) and all(r is None or r.state == "refused" for r in before):
        batch = token_of_test(plan, fresh=True)  # refused outright, nothing sent: try again
    outcomes: list[Delivery | str] = []
    for i, t in enumerate(plan.sends):
        ref = f"test-{batch}-{i}"
        if console.ledger.send_record(ref) is not None:  # a double click, a second click
            outcomes.append(
                f"**Row {t.row}: this test was sent already** (or is being sent): it is not "
                "sent twice. Change the rows or the numbers to send another."
            )
            continue
        try:
            record = console.ledger.begin_send(
                ref,
                country=t.country,
                sender=t.sender,
                content=t.content,
                recipients=t.numbers,
                currency=currency,
                estimated_micros=to_micros(t.estimate),
                created_by=actor,
                session=session_tag(),
                test=True,
            )
        except (SQLAlchemyError, OSError) as exc:
            outcomes.append(
                f"**Row {t.row} was not sent:** the ledger could not record it first "
                f"({plain(type(exc).__name__)})."
            )
            continue
        outcomes.append(deliver(console, record, actor=actor))
    return outcomes


def offer_test(console: Console, pricing: Pricing, preview: CampaignPreview, country: str) -> None:
    """The *Send a test* box under the preview (nothing here touches the campaign)."""
    state = st.session_state
    if NUMBERS not in state:  # the numbers typed earlier in this session
        state[NUMBERS] = state.get(SAVED, "")
    with st.container(border=True):
        st.markdown("**Send a test** — the first rendered messages to your own phone")
        left, right = st.columns([3, 1])
        text = left.text_input(
            "Your own number(s)",
            key=NUMBERS,
            placeholder="+1 206 555 0100",
            help=f"Up to {MAX_NUMBERS}, separated by commas: international (+…) or national "
            f"numbers of {country or 'the default country'}.",
        )
        state[SAVED] = text
        choices = list(range(1, min(MAX_ROWS, len(preview.rows)) + 1))
        rows = right.selectbox("First rows", choices, key=ROWS)
        numbers, problem = own_numbers(text, country)
        plan = OwnPlan(problem=problem)
        if not problem:
            plan = plan_test(preview, rows or 1, numbers, pricing, console.ledger.suppressed)
        if plan.opted_out:
            st.caption(
                f"{counted(len(plan.opted_out), 'opted-out number')} left out "
                f"({', '.join(plan.opted_out)}): a test is the campaign's marketing text."
            )
        check = cap_check(console.limits, console.balance, plan.messages, plan.total)
        held = rules.gate(console.ledger, console.actor).holds(plan.total)
        if plan.problem and text.strip():
            st.error(plan.problem, icon=":material/phone_disabled:")
        elif plan.sends:
            st.caption(
                f"{counted(plan.messages, 'test message')}, about "
                f"{money(plan.total, pricing.currency)}: charged to the balance, marked as "
                "tests in the ledger and in Spend; no campaign is created."
            )
            show_check(check)
            if held:
                st.error(
                    "This test is over the team's approval threshold: send fewer rows or numbers.",
                    icon=":material/approval:",
                )
        clicked = st.button(
            "Send a test",
            key="campaigns_test_send",
            icon=":material/send_to_mobile:",
            disabled=bool(plan.problem or not plan.sends or check.refusals or held),
        )
        if clicked:
            actor = access.require(
                console.ledger, Permission.CAMPAIGNS, "send tests", target="campaign test"
            )
            # Read again at the click: an opt-out added since, the threshold.
            plan = plan_test(preview, rows or 1, numbers, pricing, console.ledger.suppressed)
            if plan.problem or not plan.sends:
                state[LAST] = [f"**Nothing was sent:** {plain(plan.problem)}"]
            elif rules.gate(console.ledger, actor).holds(plan.total):
                state[LAST] = ["**Nothing was sent:** the test is over the approval threshold."]
            else:
                with st.spinner("Sending the test…"):
                    state[LAST] = send_tests(console, plan, actor.name)
                account_changed()
        for outcome in state.get(LAST, []):
            _outcome(console, outcome)


def _outcome(console: Console, outcome: Delivery | str) -> None:
    if isinstance(outcome, str):
        st.error(outcome, icon=":material/error:")
    elif outcome.kind == "sent" and outcome.result is not None:
        r = outcome.result
        st.success(
            f"Test sent — task **{plain(r.task_id)}**: {counted(len(r.messages), 'message')} "
            f"to {plain(', '.join(m.recipient for m in r.messages))}, "
            f"**{money(r.debited_amount, r.currency)}** debited.",
            icon=":material/check_circle:",
        )
    elif outcome.kind == "refused" and outcome.error is not None:
        told = advice(outcome.error, sandbox=console.sandbox, currency=console.currency)
        st.error(f"**The test was not sent.** {told}", icon=":material/block:")
    elif outcome.kind == "unrecorded":
        st.warning(
            f"**The test was sent** but the ledger could not record it "
            f"({plain(outcome.problem)}). Check KEDA\\_DATABASE\\_URL.",
            icon=":material/database:",
        )
    else:
        st.warning(
            "**No clear answer from KedaSMS: the test may have gone out.** Do not send it "
            "again: the Send page's recent sends can check what happened.",
            icon=":material/help:",
        )
