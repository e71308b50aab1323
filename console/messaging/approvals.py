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

What a decision did is kept in ``st.session_state["approvals_flash"]`` and said at the top of
the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from console import access
from console.messaging import approval_rules as rules
from console.messaging.campaign_state import start_campaign
from console.messaging.send import deliver
from console.shell import Console, account_changed, advice
from console.views import local_time, money, plain
from kedacore import KedaError
from kedacore.campaign import CampaignBusyError
from kedacore.ledger.approvals import ApprovalError, CostRose
from kedacore.ledger.records import Approval
from kedacore.money import from_micros, to_micros
from kedacore.team import Permission

FLASH = "approvals_flash"
QUEUE_SHOWN = 50  # waiting requests drawn (oldest first)
MINE_SHOWN = 50  # the member's own requests listed
DECIDED_SHOWN = 20  # recent decisions listed for approvers
PREVIEW = 500  # characters of a request's text shown


@dataclass(frozen=True, slots=True)
class Said:
    """What a decision did, for the next run to say: ``kind`` success, info, warning, error."""

    kind: str
    text: str  # Markdown (user text already through ``plain``)
    page: str | None = None
    action: str | None = None


def _flash(said: Said) -> None:
    st.session_state.setdefault(FLASH, []).append(said)


def flash() -> None:
    """Say what the last decisions did (once)."""
    for said in st.session_state.pop(FLASH, []):
        icon = {
            "success": ":material/check_circle:",
            "info": ":material/approval:",
            "warning": ":material/warning:",
            "error": ":material/block:",
        }[said.kind]
        getattr(st, said.kind)(said.text, icon=icon)
        if said.page:
            st.page_link(said.page, label=said.action, icon=":material/arrow_forward:")


def _what(console: Console, item: Approval) -> str:
    """The request's subject as pages name it (plain text)."""
    if item.kind == "campaign" and item.campaign_id is not None:
        return "campaign " + (console.ledger.campaign_label(item.campaign_id) or item.ref)
    return "the send " + item.ref


# -- decisions (each re-checks the permission when its button runs) -------------------------


def approve(
    console: Console, approval_id: int, reason: str, seen_micros: int | None = None
) -> Said:
    """Approve: checks made again, then approved once and started (or sent).

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
    what = plain(_what(console, item))
    if not item.waiting or item.requested_by == actor.name:
        try:  # the ledger refuses it, and audits the refusal
            ledger.approve(approval_id, by=actor.name, reason=reason)
        except ApprovalError as exc:
            return Said("error", f"**Not approved:** {plain(exc)}")
        raise AssertionError("the ledger approved a request it must refuse")
    standing = ledger.requester_refusal(item)
    if standing is not None:  # removed, or lost the role: nobody to send it on behalf of
        ledger.refuse_approval(approval_id, by=actor.name, reason=standing)
        return Said("error", f"**Not approved:** {plain(standing)}")
    if not reason.strip():
        return Said("error", f"**Not approved:** write why you approve {what}; it is kept.")
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
            f"**Not approved yet** — {what} keeps waiting, nothing was sent. "
            + plain(check.reason),
            first.page if first else None,
            first.action if first else None,
        )
    assert check.estimate is not None
    try:
        ledger.approve(
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
            f"{was} you were shown. Nothing was sent: {what} keeps waiting and now shows "
            f"{now}. Approve it again to send it at {now}, or reject it.",
        )
    except ApprovalError as exc:  # another approver decided it a moment ago, or the requester
        return Said("error", f"**Not approved:** {plain(exc)}")
    account_changed()
    cost = money(check.estimate, check.currency)
    if item.kind == "campaign":
        assert item.campaign_id is not None
        try:
            start_campaign(
                console,
                item.campaign_id,
                by=actor.name,
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
    record = ledger.send_record(item.ref)
    assert record is not None and record.pending
    done = deliver(console, record, actor=actor.name)
    if done.kind in ("sent", "unrecorded") and done.result is not None:
        r = done.result
        return Said(
            "success",
            f"**Approved and sent** — task **{plain(r.task_id)}**: {len(r.messages):,} "
            f"message(s), **{money(r.debited_amount, r.currency)}** debited.",
        )
    told = advice(done.error, sandbox=console.sandbox) if done.error else ""
    if done.kind == "refused":
        return Said("error", f"**Approved, but KedaSMS refused the send.** {told}")
    return Said(
        "warning",
        f"**Approved; no clear answer from KedaSMS: the message may have gone out.** {told} "
        "Do not send it again: the Send page's *Check what happened* asks with its reference.",
    )


def recheck(console: Console, item: Approval) -> rules.Recheck:
    """The cost with today's prices, the balance and today's caps, read afresh."""
    client, ledger = console.client, console.ledger
    pricing = client.pricing()
    if item.kind == "campaign":
        assert item.campaign_id is not None
        batches = ledger.campaign_batches(item.campaign_id, states=["planned"])
        estimate = rules.campaign_estimate(batches, pricing)
        messages = sum(len(b.recipients) for b in batches)
        unpriced = sorted({b.country for b in batches if pricing.price_for(b.country) is None})
    else:
        record = ledger.send_record(item.ref)
        if record is None:
            gone = rules.Problem(f"The send {item.ref} is not in the ledger: it cannot be sent.")
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
    """Reject with a reason: nothing is sent, its requester sees why."""
    actor = access.require(
        console.ledger, Permission.APPROVE, "reject requests", target=f"approval {approval_id}"
    )
    item = console.ledger.approval(approval_id)
    if item is None:
        return Said("error", "This request no longer exists.")
    what = plain(_what(console, item))
    try:  # a refusal (their own, decided already) first: audited, whatever the reason box says
        console.ledger.reject(approval_id, by=actor.name, reason=reason)
    except ApprovalError as exc:
        if not reason.strip() and item.waiting and item.requested_by != actor.name:
            return Said(
                "error", f"**Not rejected:** write why you reject {what}; its requester sees it."
            )
        return Said("error", f"**Not rejected:** {plain(exc)}")
    return Said("info", f"**Rejected** — {what} will not be sent. {item.requested_by} sees why.")


def withdraw(console: Console, approval_id: int) -> Said:
    """Who asked takes the request back (nothing was sent)."""
    item = console.ledger.approval(approval_id)
    if item is None:
        return Said("error", "This request no longer exists.")
    permission = Permission.CAMPAIGNS if item.kind == "campaign" else Permission.SEND
    actor = access.require(
        console.ledger, permission, "withdraw requests", target=f"approval {approval_id}"
    )
    try:
        console.ledger.withdraw(approval_id, by=actor.name)
    except ApprovalError as exc:
        return Said("error", f"**Not withdrawn:** {plain(exc)}")
    return Said("info", f"**Withdrawn** — {plain(_what(console, item))} will not be sent.")


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


def _subject(console: Console, item: Approval) -> tuple[str, int, dict[str, int], str]:
    """(title, recipients, countries, text) of a request's send or campaign, as it is now."""
    ledger = console.ledger
    if item.kind == "campaign" and item.campaign_id is not None:
        campaign = ledger.campaign(item.campaign_id)
        countries, first = ledger.campaign_outline(item.campaign_id)
        title = "Campaign " + (ledger.campaign_label(item.campaign_id) or item.ref)
        if campaign is None:
            return title, 0, {}, ""
        text = first or campaign.template
        if campaign.template and first and campaign.template != first:
            text = f"{first}\n\n(template: {campaign.template})"
        return title, campaign.recipients, countries, text
    record = ledger.send_record(item.ref)
    if record is None:
        return "Send", 0, {}, ""
    title = f"Send from {record.sender}" if record.sender else "Send"
    return title, record.recipient_count, {record.country: record.recipient_count}, record.content


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
    title, recipients, countries, text = _subject(console, item)
    own = item.requested_by == console.actor.name
    cur = item.currency
    # The estimate this page showed on its last run — the one the approver saw when they
    # clicked (this run reads the request afresh): it never goes out at more than that.
    seen_key = f"approvals_seen_{item.id}"
    seen = st.session_state.get(seen_key, item.estimate_micros)
    st.session_state[seen_key] = item.estimate_micros
    with st.container(border=True, key=f"approvals_item_{item.id}"):
        st.markdown(f"**{plain(title)}** :violet-badge[waiting]")
        st.markdown(
            f"Asked by **{plain(item.requested_by)}** at "
            f"{local_time(item.requested_at, console.tz)} · estimate "
            f"**{money(item.estimate, cur)}**, over the threshold of {money(item.threshold, cur)}"
            f" · {recipients:,} recipient(s) · {plain(rules.countries_text(countries))}"
        )
        if item.kind == "send":
            st.caption(f"Reference {plain(item.ref)}: it is sent with it once approved.")
        st.text(text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…")
        if own:
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
                _flash(approve(console, item.id, reason, seen))
            st.rerun()
        if right.button(
            "Reject",
            key=f"approvals_reject_{item.id}",
            icon=":material/close:",
            disabled=own,
            width="stretch",
        ):
            _flash(reject(console, item.id, reason))
            st.rerun()


def _state(item: Approval) -> str:
    return rules.STATE_WORDS.get(item.state, item.state)


def requests_frame(console: Console, items: list[Approval]) -> pd.DataFrame:
    """Requests as a table of plain text cells, newest first."""
    return pd.DataFrame(
        {
            "Asked": [local_time(i.requested_at, console.tz) for i in items],
            "By": [i.requested_by for i in items],
            "What": [i.summary for i in items],
            "Estimate": [money(i.estimate, i.currency) for i in items],
            "Threshold": [money(i.threshold, i.currency) for i in items],
            "State": [_state(i) for i in items],
            "Decided by": [i.decided_by or "" for i in items],
            "Reason": [i.reason or "" for i in items],
        },
        columns=["Asked", "By", "What", "Estimate", "Threshold", "State", "Decided by", "Reason"],
    )


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
    st.dataframe(
        requests_frame(console, items).drop(columns=["By"]),
        hide_index=True,
        width="stretch",
        key="approvals_mine",
        column_config={"What": st.column_config.TextColumn(width="large")},
    )
    for item in items:
        if not item.waiting:
            continue
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.markdown(
            f"{plain(item.summary)} — waiting since {local_time(item.requested_at, console.tz)}"
        )
        if right.button(
            "Withdraw",
            key=f"approvals_withdraw_{item.id}",
            icon=":material/undo:",
            width="stretch",
        ):
            _flash(withdraw(console, item.id))
            st.rerun()


def decided(console: Console) -> None:
    """The latest decisions, for approvers."""
    items = console.ledger.approvals(decided=True, limit=DECIDED_SHOWN)
    if not items:
        return
    st.subheader("Decided lately", anchor=False)
    st.dataframe(
        requests_frame(console, items),
        hide_index=True,
        width="stretch",
        key="approvals_decided",
        column_config={"What": st.column_config.TextColumn(width="large")},
    )


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
