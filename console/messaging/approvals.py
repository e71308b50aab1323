"""The Approvals page (and the approval parts of Campaigns): the queue an approver decides,
the requests a member made, and the decisions behind their buttons.

Every decision re-checks the permission when its button runs (``console.access.require``),
and the ledger refuses — and audits — a decision on one's own request or on one already
taken, and an approval of a request whose requester is no longer a member allowed to send or
run campaigns (reject it instead). Approving estimates the cost again with today's prices and
reads the balance and today's caps again (``approval_rules.recheck``): if they no longer
allow it, nothing starts, the request keeps waiting and the approver is told what to fix. If
it costs more than the estimate the approver was shown (the figure on their page when they
clicked), nothing starts either: the request now shows the new figure and a second click
approves that one. Otherwise the request is approved exactly once and its campaign starts
(``campaign_state.start_campaign``) or its send goes out with its own clientRef
(``send.deliver``), on behalf of the approver.

Once a request is approved or rejected, its requester is mailed the decision and its reason
when ``[smtp]`` is configured (:func:`tell_requester`): after the decision, never holding it
up, and a mail that fails never undoes it; the page says whether they were told.

Requests are named as people know them — ``Send of 3 messages to US by mia@example.com at
10:42``, ``Campaign #1 Autumn news`` — never by their clientRef alone (:func:`name`).

What a decision did is said where it was decided: under the request's reason box while it
still waits (``st.session_state["approvals_said_<id>"]``: a reason missing, a check that
failed, a higher cost), at the top of the page once it is decided
(``st.session_state["approvals_flash"]``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime

import streamlit as st

from console import access
from console.messaging import approval_rules as rules
from console.messaging import campaigns as cv
from console.messaging.campaign_state import start_campaign
from console.messaging.send import deliver
from console.shell import Console, account_changed, advice
from console.views import local_time, money, plain
from kedacore import KedaError
from kedacore.campaign import CampaignBusyError
from kedacore.ledger.approvals import ApprovalError, CostRose
from kedacore.ledger.notices import Delivery
from kedacore.ledger.records import Approval
from kedacore.money import from_micros, to_micros
from kedacore.notify import notify_config, send_mail
from kedacore.notify.config import console_url
from kedacore.team import LOCAL_OPERATOR, Permission

log = logging.getLogger(__name__)

FLASH = "approvals_flash"
SAID = "approvals_said_{}"  # what the last click on a request still waiting did
QUEUE_SHOWN = 50  # waiting requests drawn (oldest first)
MINE_SHOWN = 50  # the member's own requests listed
DECIDED_SHOWN = 20  # recent decisions listed for approvers
PREVIEW = 500  # characters of a request's text shown
QUOTE = 80  # characters of a request's text quoted in a list
MAIL_WAIT = 8.0  # seconds a decision's page waits for the requester's mail before going on
MAILER = "console"  # who the audit log says mailed a decision (as for notifications)
BADGES = {"waiting": "violet", "approved": "green", "rejected": "red", "withdrawn": "gray"}
VERBS = {"approved": "Approved", "rejected": "Rejected", "withdrawn": "Withdrawn"}


@dataclass(frozen=True, slots=True)
class Said:
    """What a decision did, for the next run to say: ``kind`` success, info, warning, error."""

    kind: str
    text: str  # Markdown (user text already through ``plain``)
    page: str | None = None
    action: str | None = None


ICONS = {
    "success": ":material/check_circle:",
    "info": ":material/approval:",
    "warning": ":material/warning:",
    "error": ":material/block:",
}


def _say(said: Said) -> None:
    getattr(st, said.kind)(said.text, icon=ICONS[said.kind])
    if said.page:
        st.page_link(said.page, label=said.action, icon=":material/arrow_forward:")


def _flash(said: Said) -> None:
    st.session_state.setdefault(FLASH, []).append(said)


def _told(console: Console, approval_id: int, said: Said) -> None:
    """Keep what a click did for the next run: under the request while it still waits, at
    the top of the page once it is decided (it leaves the queue)."""
    item = console.ledger.approval(approval_id)
    if item is not None and item.waiting:
        st.session_state[SAID.format(approval_id)] = said
    else:
        _flash(said)


def flash() -> None:
    """Say what the last decisions did (once)."""
    for said in st.session_state.pop(FLASH, []):
        _say(said)


# -- requests as people call them -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """A request's send or campaign as it is now (plain text)."""

    title: str  # "Send of 3 messages to US", "Campaign #1 Autumn news"
    recipients: int
    countries: dict[str, int]
    text: str  # the message (a campaign: its first message, and its template)
    sender: str | None = None


def subject(console: Console, item: Approval) -> Subject:
    """What ``item`` would send, read from the ledger now."""
    ledger = console.ledger
    if item.kind == "campaign" and item.campaign_id is not None:
        label = ledger.campaign_label(item.campaign_id)
        title = f"Campaign {label}" if label else "A campaign that no longer exists"
        campaign = ledger.campaign(item.campaign_id)
        if campaign is None:
            return Subject(title, 0, {}, "")
        countries, first = ledger.campaign_outline(item.campaign_id)
        text = first or campaign.template
        if campaign.template and first and campaign.template != first:
            text = f"{first}\n\n(template: {campaign.template})"
        return Subject(title, campaign.recipients, countries, text)
    record = ledger.send_record(item.ref)
    if record is None:
        return Subject("A send that is no longer in the ledger", 0, {}, "")
    return Subject(
        rules.send_name(record.recipient_count, record.country),
        record.recipient_count,
        {record.country: record.recipient_count},
        record.content,
        record.sender,
    )


def short_time(console: Console, value: datetime | None) -> str:
    """``10:42`` today, ``2026-12-07 10:42`` another day (the reader's time zone)."""
    if value is None:
        return ""
    shown = local_time(value, console.tz)
    today = local_time(console.ledger.now(), console.tz)[:10]
    return shown[11:16] if shown[:10] == today else shown[:16]


def name(console: Console, item: Approval, found: Subject | None = None) -> str:
    """A request as people call it (plain text): ``Send of 3 messages to US by
    mia@example.com at 10:42``, ``Campaign #1 Autumn news``."""
    title = (found or subject(console, item)).title
    if item.kind == "campaign":
        return title
    return f"{title} by {item.requested_by} at {short_time(console, item.requested_at)}"


def _this(item: Approval) -> str:
    return "this campaign" if item.kind == "campaign" else "this send"


# -- decisions (each re-checks the permission when its button runs) -------------------------


def approve(
    console: Console, approval_id: int, reason: str, seen_micros: int | None = None
) -> Said:
    """Approve: checks made again, then approved once and started (or sent), and its
    requester told.

    ``seen_micros``: the estimate the approver's page showed when they clicked; it never goes
    out at a higher cost than that (default: the request's estimate as stored now).
    """
    ledger = console.ledger
    actor = access.require(
        ledger, Permission.APPROVE, "approve requests", target=f"approval {approval_id}"
    )
    item = ledger.approval(approval_id)
    if item is None:
        return Said("error", "This request no longer exists.")
    if not item.waiting or item.requested_by == actor.name:
        try:  # the ledger refuses it, and audits the refusal
            ledger.approve(approval_id, by=actor.name, reason=reason)
        except ApprovalError as exc:
            return Said("error", f"**Not approved** — {plain(name(console, item))}: {plain(exc)}")
        raise AssertionError("the ledger approved a request it must refuse")
    standing = ledger.requester_refusal(item)
    if standing is not None:  # removed, or lost the role: nobody to send it on behalf of
        ledger.refuse_approval(approval_id, by=actor.name, reason=standing)
        return Said("error", f"**Not approved:** {plain(standing)}")
    if not reason.strip():
        return Said(
            "error",
            f"Write a reason for approving {_this(item)} first: it is kept in the audit log.",
        )
    try:
        check = recheck(console, item)
    except KedaError as exc:
        told = advice(exc, sandbox=console.sandbox, markdown=False)
        ledger.refuse_approval(
            approval_id, by=actor.name, reason=f"The service could not be asked: {told}"
        )
        return Said(
            "error", f"**Not approved yet** — it keeps waiting. {plain(told)}".replace("\n", " ")
        )
    if not check.ok:
        ledger.refuse_approval(
            approval_id,
            by=actor.name,
            reason=check.reason,
            after={"estimate": check.estimate, "currency": check.currency},
        )
        first = next((p for p in check.problems if p.page), None)
        return Said(
            "error",
            "**Not approved yet** — it keeps waiting, nothing was sent. " + plain(check.reason),
            first.page if first else None,
            first.action if first else None,
        )
    assert check.estimate is not None
    named = name(console, item)  # before it goes out: the send as it was asked for
    try:
        decided = ledger.approve(
            approval_id,
            by=actor.name,
            reason=reason,
            estimate_micros=to_micros(check.estimate),
            seen_micros=seen_micros,
        )
    except CostRose as exc:  # not what they were shown: shown now, for a second click
        now = money(from_micros(exc.now_micros), item.currency)
        was = money(from_micros(exc.shown_micros), item.currency)
        return Said(
            "warning",
            f"**Not approved yet — it costs more now:** **{now}** with today's prices, not the "
            f"{was} you were shown. Nothing was sent: it keeps waiting and now shows {now}. "
            f"Approve it again to send it at {now}, or reject it.",
        )
    except ApprovalError as exc:  # another approver decided it a moment ago, or the requester
        return Said("error", f"**Not approved** — {plain(named)}: {plain(exc)}")
    account_changed()
    said = _go(console, item, plain(named), check, actor.name)
    return replace(said, text=f"{said.text} {tell_requester(console, decided, named)}")


def _go(console: Console, item: Approval, what: str, check: rules.Recheck, by: str) -> Said:
    """An approved request goes out: its campaign starts, or its send is sent."""
    assert check.estimate is not None
    cost = money(check.estimate, check.currency)
    if item.kind == "campaign":
        assert item.campaign_id is not None
        try:
            start_campaign(
                console,
                item.campaign_id,
                by=by,
                detail=f"approved: the request of {item.requested_by}",
            )
        except (CampaignBusyError, ValueError) as exc:
            return Said(
                "warning",
                f"**Approved**, but {what} did not start ({plain(exc)}): resume it on the "
                "Campaigns page.",
                "pages/campaigns.py",
                "Campaigns",
            )
        return Said(
            "success",
            f"**Approved — {what} started** ({cost} estimated now). It sends in the "
            f"background; follow it on the Campaigns page.",
            "pages/campaigns.py",
            "Campaigns",
        )
    record = console.ledger.send_record(item.ref)
    assert record is not None and record.pending
    done = deliver(console, record, actor=by)
    if done.kind in ("sent", "unrecorded") and done.result is not None:
        r = done.result
        return Said(
            "success",
            f"**Approved and sent** — {what}: task **{plain(r.task_id)}**, "
            f"{rules.counted(len(r.messages), 'message')}, "
            f"**{money(r.debited_amount, r.currency)}** debited.",
        )
    told = advice(done.error, sandbox=console.sandbox) if done.error else ""
    if done.kind == "refused":
        return Said("error", f"**Approved, but KedaSMS refused the send** — {what}. {told}")
    return Said(
        "warning",
        f"**Approved; no clear answer from KedaSMS: the message may have gone out** — {what}. "
        f"{told} Do not send it again: the Send page's *Check what happened* asks with its "
        "reference.",
    )


def recheck(console: Console, item: Approval) -> rules.Recheck:
    """The cost with today's prices, the balance and today's caps, read afresh."""
    client, ledger = console.client, console.ledger
    pricing = client.pricing()
    if item.kind == "campaign":
        assert item.campaign_id is not None
        batches = ledger.campaign_batches(item.campaign_id, states=["planned"])
        campaign = ledger.campaign(item.campaign_id)
        tracked = (
            campaign is not None
            and cv.options_of(ledger, console.settings.data_dir, campaign).track_click
        )
        estimate = rules.campaign_estimate(
            batches, pricing, track_click=tracked, short_base=console.runtime.short_link_base
        )
        messages = sum(len(b.recipients) for b in batches)
        unpriced = sorted({b.country for b in batches if pricing.price_for(b.country) is None})
    else:
        record = ledger.send_record(item.ref)
        if record is None:
            gone = rules.Problem("This send is no longer in the ledger: it cannot be sent.")
            return rules.Recheck(None, 0, item.currency, (gone,))
        estimate = rules.send_estimate(record, pricing, console.runtime.short_link_base)
        messages = record.recipient_count
        unpriced = [record.country] if pricing.price_for(record.country) is None else []
    return rules.recheck(
        estimate,
        messages,
        client.account.balance(),
        client.limits.get(),
        unpriced=unpriced,
    )


def reject(console: Console, approval_id: int, reason: str) -> Said:
    """Reject with a reason: nothing is sent, its requester is told why."""
    actor = access.require(
        console.ledger, Permission.APPROVE, "reject requests", target=f"approval {approval_id}"
    )
    item = console.ledger.approval(approval_id)
    if item is None:
        return Said("error", "This request no longer exists.")
    named = name(console, item)
    try:  # a refusal (their own, decided already) first: audited, whatever the reason box says
        decided = console.ledger.reject(approval_id, by=actor.name, reason=reason)
    except ApprovalError as exc:
        if not reason.strip() and item.waiting and item.requested_by != actor.name:
            return Said(
                "error",
                f"Write a reason for rejecting {_this(item)} first: it is kept in the audit "
                f"log, and {plain(item.requested_by)} reads it.",
            )
        return Said("error", f"**Not rejected** — {plain(named)}: {plain(exc)}")
    return Said(
        "info",
        f"**Rejected** — {plain(named)}: nothing is sent. "
        + tell_requester(console, decided, named),
    )


def withdraw(console: Console, approval_id: int) -> Said:
    """Who asked takes the request back (nothing was sent)."""
    item = console.ledger.approval(approval_id)
    if item is None:
        return Said("error", "This request no longer exists.")
    permission = Permission.CAMPAIGNS if item.kind == "campaign" else Permission.SEND
    actor = access.require(
        console.ledger, permission, "withdraw requests", target=f"approval {approval_id}"
    )
    named = name(console, item)
    try:
        console.ledger.withdraw(approval_id, by=actor.name)
    except ApprovalError as exc:
        return Said("error", f"**Not withdrawn** — {plain(named)}: {plain(exc)}")
    return Said("info", f"**Withdrawn** — {plain(named)}: nothing is sent.")


# -- telling the requester ------------------------------------------------------------------


def tell_requester(console: Console, decided: Approval, named: str) -> str:
    """Mail ``decided``'s requester the decision and its reason, if ``[smtp]`` is configured;
    what became of it, in one sentence (Markdown). Never raises: the decision is made."""
    requester = decided.requested_by
    if requester == LOCAL_OPERATOR or "@" not in requester:
        return ""
    where = "they see it under My requests on the Approvals page"
    try:
        config = notify_config(st.secrets)
        if config.smtp is None:
            why = (
                f"the [smtp] settings are wrong: {config.smtp_problem}"
                if config.smtp_problem
                else "no mail server is configured"
            )
            return f"{plain(requester)} was not told by e-mail ({plain(why)}): {where}."
        link = console_url(st.secrets) + "/approvals"
        notice = rules.decision_notice(decided, named, link)
    except Exception:  # a decision is never failed by its mail
        log.exception("approvals: the mail to the requester could not be made")
        return f"{plain(requester)} was not told by e-mail (it could not be made): {where}."
    ledger, smtp = console.ledger, config.smtp
    outcomes: list[Delivery] = []
    target = f"campaign {decided.ref}" if decided.kind == "campaign" else f"send {decided.ref}"

    def mail() -> None:
        try:
            got = send_mail(smtp, [requester], notice)
        except Exception as exc:  # a bug in mailing never reaches the decision
            log.exception("approvals: mailing the requester failed")
            got = [Delivery("email", requester, False, f"not sent ({type(exc).__name__})")]
        outcomes.extend(got)
        try:
            ledger.audit(
                MAILER,
                "notification",
                target=target,
                after={"subject": notice.subject, "deliveries": [d.as_json() for d in got]},
                detail=f"The decision, mailed to its requester ({decided.state})",
                outcome="done" if got and all(d.ok for d in got) else "failed",
            )
        except Exception:
            log.exception("approvals: the mail to the requester could not be audited")

    sender = threading.Thread(target=mail, name=f"approval-mail-{decided.id}", daemon=True)
    sender.start()
    sender.join(MAIL_WAIT)
    if not outcomes:
        return (
            f"A mail to {plain(requester)} is on its way (the mail server is slow to answer); "
            "the audit log says whether it went."
        )
    got = outcomes[0]
    if got.ok:
        return f"{plain(requester)} was told by e-mail."
    return (
        f"{plain(requester)} could not be told by e-mail ({plain(got.error)}): tell them "
        f"yourself; {where}."
    )


# -- views --------------------------------------------------------------------------------


def threshold_line(console: Console) -> None:
    """The threshold as it stands, and — without sign-in — why nothing waits."""
    gate = rules.gate(console.ledger, console.actor)
    cur = console.currency
    if console.actor.local:
        st.info(
            "**Nobody signs in to this console**: it serves one local operator, so there is no "
            "second person to approve anything and nothing waits for approval"
            + (
                f" (the threshold of {money(gate.threshold, cur)} holds once members sign in)"
                if gate.threshold is not None
                else ""
            )
            + ". Configure sign-in to use approvals (docs/team.md).",
            icon=":material/person:",
        )
    elif gate.threshold is None:
        st.caption(
            "No approval threshold is set: nothing waits for approval. Finance sets it on the "
            "Limits page."
        )
    else:
        st.caption(
            f"A send or campaign estimated over **{money(gate.threshold, cur)}** waits here "
            "until a finance or admin member other than its requester approves it (the "
            "threshold is set on the Limits page)."
        )


def _nobody(console: Console, item: Approval) -> bool:
    """Say so when no member other than its requester may approve ``item``; whether so."""
    if console.ledger.approvers(besides=item.requested_by):
        return False
    mine = item.requested_by == console.actor.name
    st.warning(
        plain(
            rules.nobody_approves(
                None if mine else item.requested_by,
                admin=console.actor.can(Permission.MEMBERS),
            )
        ),
        icon=":material/person_off:",
    )
    return True


def queue(console: Console) -> None:
    """What waits for a decision, oldest first, each with its reason box and buttons."""
    st.subheader("Waiting for approval", anchor=False)
    items = console.ledger.approvals(states=["waiting"], oldest_first=True, limit=QUEUE_SHOWN)
    if not items:
        st.caption("Nothing waits for approval.")
        return
    for item in items:
        request(console, item)


def request(console: Console, item: Approval) -> None:
    """One waiting request: what, who asked, estimate against threshold, the text; decide."""
    found = subject(console, item)
    own = item.requested_by == console.actor.name
    cur = item.currency
    # The estimate this page showed on its last run — the one the approver saw when they
    # clicked (this run reads the request afresh): it never goes out at more than that.
    seen_key = f"approvals_seen_{item.id}"
    seen = st.session_state.get(seen_key, item.estimate_micros)
    st.session_state[seen_key] = item.estimate_micros
    with st.container(border=True, key=f"approvals_item_{item.id}"):
        st.markdown(f"**{plain(found.title)}** :violet-badge[waiting]")
        st.markdown(
            f"Asked by **{plain(item.requested_by)}** at "
            f"{local_time(item.requested_at, console.tz)} · estimate "
            f"**{money(item.estimate, cur)}**, over the threshold of {money(item.threshold, cur)}"
            f" · {rules.counted(found.recipients, 'recipient')} · "
            f"{plain(rules.countries_text(found.countries))}"
        )
        if item.requested_by.startswith("command line ("):  # kedacore.campaign.cli.actor()
            st.warning(
                "Made on the command line by the OS user "
                f"{plain(item.requested_by.removeprefix('command line (').removesuffix(')'))}: "
                "not a signed-in member; approve only if you know who ran it.",
                icon=":material/terminal:",
            )
        if item.kind == "send":
            sender = f"Sender id {plain(found.sender)} · " if found.sender else ""
            st.caption(f"{sender}Reference {plain(item.ref)}: it is sent with it once approved.")
        st.text(found.text if len(found.text) <= PREVIEW else found.text[: PREVIEW - 1] + "…")
        if own:
            if not _nobody(console, item):
                st.caption(
                    "You asked for this: another finance or admin member must approve or reject it."
                )
        elif (standing := console.ledger.requester_refusal(item)) is not None:
            st.warning(plain(standing), icon=":material/person_off:")
        reason = st.text_input(
            "Reason (required, kept with the decision)",
            key=f"approvals_reason_{item.id}",
            max_chars=500,
            disabled=own,
        )
        if (said := st.session_state.pop(SAID.format(item.id), None)) is not None:
            _say(said)  # what the last click on it did, where it was clicked
        left, right, _ = st.columns([1, 1, 3])
        if left.button(
            "Approve",
            key=f"approvals_approve_{item.id}",
            type="primary",
            icon=":material/check:",
            disabled=own,
            width="stretch",
            help="The cost, the balance and today's caps are checked again first.",
        ):
            with st.spinner("Checking the cost, the balance and the caps…"):
                _told(console, item.id, approve(console, item.id, reason, seen))
            st.rerun()
        if right.button(
            "Reject",
            key=f"approvals_reject_{item.id}",
            icon=":material/close:",
            disabled=own,
            width="stretch",
        ):
            _told(console, item.id, reject(console, item.id, reason))
            st.rerun()


def _state(item: Approval) -> str:
    return rules.STATE_WORDS.get(item.state, item.state)


def _quote(text: str) -> str:
    line = " ".join(text.split())
    return f"“{line if len(line) <= QUOTE else line[: QUOTE - 1] + '…'}”" if line else ""


def listed(console: Console, item: Approval, *, mine: bool) -> None:
    """One request in a list (My requests, Decided lately): where it stands first — the
    decision, who took it and why, in full — then what it is."""
    found = subject(console, item)
    cur = item.currency
    key = f"approvals_{'mine' if mine else 'decided'}_{item.id}"
    with st.container(border=True, key=key):
        st.markdown(
            f"**{plain(found.title)}** :{BADGES.get(item.state, 'gray')}-badge[{_state(item)}]"
        )
        if item.waiting:
            if not _nobody(console, item):
                approvers = console.ledger.approvers(besides=item.requested_by)
                whom = rules.who_approves(approvers, None if mine else item.requested_by)
                st.markdown(f"Waits for {plain(whom)} to approve or reject it.")
        else:
            verb = VERBS.get(item.state, item.state.capitalize())
            line = (
                f"**{verb} by {plain(item.decided_by or 'someone')}** at "
                f"{short_time(console, item.decided_at)}"
            )
            if item.state == "withdrawn":
                line += ", before approval."
            else:
                line += f": {plain(item.reason)}" if item.reason else "."
            st.markdown(line)
        facts = [
            ("Asked" if mine else f"Asked by {plain(item.requested_by)}")
            + f" at {short_time(console, item.requested_at)}",
            f"estimate {money(item.estimate, cur)} (threshold {money(item.threshold, cur)})",
        ]
        if item.kind == "campaign":
            facts.append(
                f"{rules.counted(found.recipients, 'recipient')} "
                f"({plain(rules.countries_text(found.countries))})"
            )
        if quoted := _quote(found.text.split("\n\n(template:")[0]):
            facts.append(plain(quoted))
        if item.kind == "send":
            facts.append(f"reference {plain(item.ref)}")
        st.caption(" · ".join(facts))
        if (
            mine
            and item.waiting
            and st.button(
                "Withdraw",
                key=f"approvals_withdraw_{item.id}",
                icon=":material/undo:",
                help="Take the request back: nothing is sent.",
            )
        ):
            _flash(withdraw(console, item.id))
            st.rerun()


def my_requests(console: Console) -> None:
    """The member's own requests and where each stands; a waiting one can be withdrawn."""
    st.subheader("My requests", anchor=False)
    items = console.ledger.approvals(requested_by=console.actor.name, limit=MINE_SHOWN)
    if not items:
        st.caption(
            "You have asked for no approval: a send or campaign over the threshold is listed "
            "here once you confirm it."
        )
        return
    for item in items:
        listed(console, item, mine=True)


def decided(console: Console) -> None:
    """The latest decisions, for approvers."""
    items = console.ledger.approvals(decided=True, limit=DECIDED_SHOWN)
    if not items:
        return
    st.subheader("Decided lately", anchor=False)
    for item in items:
        listed(console, item, mine=False)


# -- on the Campaigns page ------------------------------------------------------------------


def campaign_approval(console: Console, campaign_id: int, label: str) -> None:
    """Where a campaign's approval stands: waiting (withdraw), rejected (why), approved (by
    whom). Nothing for a campaign that never needed one."""
    item = console.ledger.approval_of("campaign", campaign_id)
    if item is None:
        return
    cur = item.currency
    if item.waiting and label == "awaiting approval":
        approvers = console.ledger.approvers(besides=item.requested_by)
        mine = item.requested_by == console.actor.name
        whom = rules.who_approves(approvers, None if mine else item.requested_by)
        st.info(
            f"**Awaiting approval** — asked by {plain(item.requested_by)} at "
            f"{local_time(item.requested_at, console.tz)}. It costs {money(item.estimate, cur)}, "
            f"over the team's threshold of {money(item.threshold, cur)}: nothing is sent or "
            f"frozen until {plain(whom)} approves it on the Approvals page.",
            icon=":material/approval:",
        )
        row = st.container(horizontal=True, vertical_alignment="center")
        row.page_link("pages/approvals.py", label="Approvals", icon=":material/arrow_forward:")
        if mine and row.button(
            "Withdraw the request", key="campaigns_withdraw", icon=":material/undo:"
        ):
            _flash(withdraw(console, item.id))
            st.rerun()
        return
    when = local_time(item.decided_at, console.tz) if item.decided_at else ""
    if item.state == "rejected":
        st.error(
            f"**Rejected** by {plain(item.decided_by or 'someone')} at {when}: "
            f"{plain(item.reason or '')}. Nothing was sent. To send it differently, start a new "
            "campaign under New campaign.",
            icon=":material/block:",
        )
    elif item.state == "withdrawn":
        st.caption(f"Withdrawn by {plain(item.decided_by or '')} at {when}, before approval.")
    elif item.state == "approved":
        st.caption(
            f":material/approval: Approved by {plain(item.decided_by or '')} at {when}: "
            f"{plain(item.reason or '')} (estimate {money(item.estimate, cur)}, over the "
            f"threshold of {money(item.threshold, cur)})."
        )
