"""What waits for a second person (maker–checker): approval requests and their decisions.

A send or a campaign whose estimate is over the team's approval threshold
(``kedacore.ledger.team.APPROVAL_THRESHOLD``) is held before anything goes out: the send is
written as ``awaiting`` (``hold_send``), the campaign's plan is written and the campaign
moved to ``awaiting`` (``hold_campaign``) — nothing is sent, nothing frozen at the service.
An ``approvals`` row says who asked, for how much, against which threshold.

A member other than the one who asked then decides, once:

- ``approve``: the request is ``approved`` and its send or campaign is released (the send
  ``pending``, the campaign ``planned``) for the console to send or start — the same path as
  without approval, so it goes out exactly once;
- ``reject``: ``rejected`` with the reason; the send and the campaign are ``rejected`` for good;
- ``withdraw`` (only who asked): ``withdrawn``; the send ``withdrawn``, the campaign
  ``cancelled``.

Deciding is exactly once: the request leaves ``waiting`` by a conditional UPDATE in a write
transaction, so of two approvers clicking at once one decides and the other is told who did.
Nobody decides their own request. A request is approved only while its requester is still a
member allowed to send (a send) or run campaigns (a campaign): one removed, or whose role was
taken away, is rejected instead. Nobody approves a cost higher than the one they were shown:
when the cost estimated on approval is over it, the approval is refused, the request shows the
new figure (audited), and approving again approves that one (:class:`CostRose`). Every
decision — and every refused one — writes its audit entry in the same transaction. Whether
the decider holds the permission is the console's check (``console.access.require``); the
ledger keeps the rules that do not depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kedacore.ledger import schema as s
from kedacore.ledger.campaigns import outline
from kedacore.ledger.engine import reading, writing
from kedacore.ledger.records import Approval
from kedacore.ledger.sends import send_values
from kedacore.money import from_micros
from kedacore.redaction import redact_text
from kedacore.team.roles import LOCAL_OPERATOR, Permission, allowed, normalize_email, parse_roles
from kedacore.words import counted

APPROVAL_KINDS = ("campaign", "send")
APPROVAL_STATES = ("waiting", "approved", "rejected", "withdrawn")
COMMAND_LINE = "command line ("  # kedacore.campaign.cli.actor(): no member's e-mail starts so
SUMMARY_TEXT = 80  # characters of the text quoted in a request's one-line summary
MAX_REASON = 1000  # characters of a decision's reason kept
_VERDICTS = {"approve": "approved", "reject": "rejected", "withdraw": "withdrawn"}


class ApprovalError(ValueError):
    """A decision that was not taken; the message says why, for a person."""


class CostRose(ApprovalError):
    """Not approved: it costs more now than the approver was shown. The request now shows what
    it costs (``now_micros``); approving again approves that."""

    def __init__(self, message: str, *, shown_micros: int, now_micros: int) -> None:
        super().__init__(message)
        self.shown_micros = shown_micros
        self.now_micros = now_micros


def _target(kind: str, ref: str) -> str:
    return f"campaign {ref}" if kind == "campaign" else f"send {ref}"


def _quote(text: str) -> str:
    line = " ".join(text.split())
    return f"“{line if len(line) <= SUMMARY_TEXT else line[: SUMMARY_TEXT - 1] + '…'}”"


def _countries(countries: dict[str, int]) -> str:
    if len(countries) == 1:
        return next(iter(countries))
    return ", ".join(f"{c} {n:,}" for c, n in countries.items())


def send_summary(recipients: int, country: str, sender: str | None, content: str) -> str:
    """A held send in one line (the approvals row's ``summary``, which notifications quote)."""
    frm = f" from {sender}" if sender else ""
    return (
        f"Send to {counted(recipients, 'recipient')} in {country.upper()}{frm}: {_quote(content)}"
    )


def campaign_summary(
    name: str, recipients: int, requests: int, countries: dict[str, int], text: str
) -> str:
    """A held campaign in one line (the approvals row's ``summary``)."""
    where = _countries(countries) or "—"
    return (
        f"Campaign “{name}” to {counted(recipients, 'recipient')} in {where}, "
        f"{counted(requests, 'request')}: {_quote(text)}"
    )


def _amount(micros: int, currency: str) -> str:
    """``0.14 USD``, ``1,000.00 USD``, ``0.048 USD``: every decimal, at least two."""
    whole, _, frac = format(from_micros(micros), ",f").partition(".")
    return f"{whole}.{frac.ljust(2, '0')} {currency}"


def _when(value: datetime | None) -> str:
    return f" ({value:%Y-%m-%d %H:%M} UTC)" if value is not None else ""


class ApprovalsMixin:
    """Approval requests of the Ledger (see the module docstring)."""

    engine: Any
    audit: Any  # TeamMixin.audit (annotations only: a stub here would shadow the real one)
    members: Any

    def now(self) -> datetime:
        raise NotImplementedError

    # -- asking -------------------------------------------------------------------------------

    def hold_send(
        self,
        client_ref: str,
        *,
        country: str,
        sender: str | None,
        content: str,
        recipients: Sequence[str],
        currency: str,
        estimated_micros: int,
        threshold_micros: int,
        created_by: str,
        track_click: bool = False,
        session: str | None = None,
    ) -> Approval:
        """Record a send over the threshold as ``awaiting``, its approval request and the audit
        entry ``send_awaiting``, in one transaction; nothing is sent. The same ``client_ref``
        again returns the first request (a double click is the same send)."""
        now = self.now()
        row = send_values(
            client_ref,
            "awaiting",
            now,
            country=country,
            sender=sender,
            content=content,
            recipients=recipients,
            currency=currency,
            track_click=track_click,
            estimated_micros=estimated_micros,
            created_by=created_by,
            session=session,
        )
        summary = send_summary(len(recipients), country, sender, content)
        try:
            with writing(self.engine) as conn:
                known = conn.execute(
                    select(s.sends.c.id).where(s.sends.c.client_ref == client_ref)
                ).first()
                if known is None:
                    conn.execute(insert(s.sends).values(row))
                    self._ask(
                        conn,
                        "send",
                        client_ref,
                        summary=summary,
                        by=created_by,
                        estimate_micros=estimated_micros,
                        threshold_micros=threshold_micros,
                        currency=currency,
                        action="send_awaiting",
                        after={
                            "recipients": len(recipients),
                            "countries": [country.upper()],
                            "client_ref": client_ref,
                        },
                    )
        except IntegrityError:  # another writer recorded this reference first
            pass
        found = self.approval_of("send", client_ref)
        if found is None:
            raise ApprovalError(f"the send {client_ref} was recorded without approval already")
        return found

    def hold_campaign(self, campaign_id: int, *, by: str, threshold_micros: int) -> Approval:
        """Hold a planned campaign for approval: ``awaiting``, its request, the audit entry
        ``campaign_awaiting``, in one transaction. ApprovalError unless it is planned and
        nothing of it was sent."""
        c, b = s.campaigns.c, s.campaign_batches.c
        with writing(self.engine) as conn:
            campaign = conn.execute(select(s.campaigns).where(c.id == campaign_id)).first()
            if campaign is None:
                raise KeyError(f"no campaign {campaign_id!r}")
            sent = conn.scalar(
                select(func.count()).where(b.campaign_id == campaign_id, b.state != "planned")
            )
            moved = conn.execute(
                update(s.campaigns)
                # scheduled: planned with a later time (migration 0006); approved, it is
                # planned again and its first run sends what is due then waits for the rest
                .where(c.id == campaign_id, c.status.in_(["planned", "scheduled"]))
                .values(status="awaiting", error=None, updated_at=self.now())
            ).rowcount
            if sent or moved != 1:
                raise ApprovalError(
                    f"campaign {campaign_id} is {campaign.status}: only a campaign not started "
                    "yet can wait for approval"
                )
            countries, first = outline(conn, campaign_id)
            summary = campaign_summary(
                campaign.name,
                campaign.recipients,
                campaign.batches,
                countries,
                first or campaign.template,
            )
            approval_id = self._ask(
                conn,
                "campaign",
                str(campaign_id),
                summary=summary,
                by=by,
                estimate_micros=campaign.estimated_micros,
                threshold_micros=threshold_micros,
                currency=campaign.currency,
                action="campaign_awaiting",
                after={
                    "name": campaign.name,
                    "recipients": campaign.recipients,
                    "countries": sorted(countries),
                },
            )
        found = self.approval(approval_id)
        assert found is not None
        return found

    def _ask(
        self,
        conn: Connection,
        kind: str,
        ref: str,
        *,
        summary: str,
        by: str,
        estimate_micros: int,
        threshold_micros: int,
        currency: str,
        action: str,
        after: dict[str, Any],
    ) -> int:
        result = conn.execute(
            insert(s.approvals).values(
                kind=kind,
                ref=ref,
                summary=summary,
                requested_by=by,
                requested_at=self.now(),
                estimate_micros=estimate_micros,
                threshold_micros=threshold_micros,
                currency=currency,
                state="waiting",
            )
        )
        approval_id = int(result.inserted_primary_key[0])
        after = {
            **after,
            "approval": approval_id,
            "estimate": from_micros(estimate_micros),
            "threshold": from_micros(threshold_micros),
            "currency": currency,
        }
        self.audit(
            by,
            action,
            target=_target(kind, ref),
            after=after,
            detail="over the approval threshold: waits for another member's approval",
            conn=conn,
        )
        return approval_id

    # -- deciding -----------------------------------------------------------------------------

    def approve(
        self,
        approval_id: int,
        *,
        by: str,
        reason: str,
        estimate_micros: int | None = None,
        seen_micros: int | None = None,
    ) -> Approval:
        """Approve a waiting request (exactly once) and release its send (``pending``) or
        campaign (``planned``) for the console to send or start.

        Args:
            estimate_micros: the cost as re-estimated now (recorded, and the send's estimate).
            seen_micros: the estimate the approver was shown (default: the request's own).

        Raises:
            CostRose: ``estimate_micros`` is over what the approver was shown: not approved;
                the request now shows ``estimate_micros`` (audited).
            ApprovalError: no reason, their own request, decided already, or its requester
                may no longer send or run campaigns (audited).
        """
        return self._decide(approval_id, "approve", by, reason, estimate_micros, seen_micros)

    def reject(self, approval_id: int, *, by: str, reason: str) -> Approval:
        """Reject a waiting request with a reason: its send or campaign is ``rejected``."""
        return self._decide(approval_id, "reject", by, reason, None)

    def withdraw(self, approval_id: int, *, by: str, reason: str = "") -> Approval:
        """Who asked takes the request back: the send ``withdrawn``, the campaign ``cancelled``."""
        return self._decide(approval_id, "withdraw", by, reason, None)

    def requester_refusal(self, item: Approval) -> str | None:
        """Why ``item`` cannot be approved because of who asked for it (removed from the team,
        or no longer allowed to send or run campaigns), or None."""
        with reading(self.engine) as conn:
            return _standing(conn, item.kind, item.requested_by)

    def refuse_approval(
        self, approval_id: int, *, by: str, reason: str, after: dict[str, Any] | None = None
    ) -> None:
        """Audit an approval the console's checks refused (the requester, the balance, a cap):
        the request stays waiting."""
        item = self.approval(approval_id)
        if item is None:
            raise KeyError(f"no approval request {approval_id!r}")
        self.audit(
            by,
            "approve",
            target=_target(item.kind, item.ref),
            after=after,
            detail=reason,
            outcome="refused",
        )

    def _decide(
        self,
        approval_id: int,
        action: str,
        by: str,
        reason: str,
        estimate_micros: int | None,
        seen_micros: int | None = None,
    ) -> Approval:
        verdict = _VERDICTS[action]
        reason = redact_text((reason or "").strip())[:MAX_REASON]
        t = s.approvals
        refusal: str | None = None
        rose: CostRose | None = None
        with writing(self.engine) as conn:
            row = conn.execute(select(t).where(t.c.id == approval_id).with_for_update()).first()
            if row is None:
                raise KeyError(f"no approval request {approval_id!r}")
            target = _target(row.kind, row.ref)
            refusal = _refusal(row, action, by)
            if refusal is None and action == "approve":
                refusal = _standing(conn, row.kind, row.requested_by)
            if refusal is None and action != "withdraw" and not reason:
                # A form left incomplete, not a refusal: nothing to audit.
                raise ApprovalError(
                    f"Write why you {action} it: the reason is kept with the decision."
                )
            if refusal is None and action == "approve" and estimate_micros is not None:
                shown = row.estimate_micros if seen_micros is None else seen_micros
                if estimate_micros > shown:
                    rose = self._cost_rose(conn, row, by, shown, estimate_micros)
                    refusal = str(rose)
            if refusal is None:
                done = conn.execute(
                    update(t)
                    .where(t.c.id == approval_id, t.c.state == "waiting")
                    .values(state=verdict, decided_by=by, decided_at=self.now(), reason=reason)
                ).rowcount
                if done != 1:  # cannot happen in a write transaction; said all the same
                    refusal = "It was decided by someone else a moment ago."
            if rose is not None:
                pass  # audited with the new figure by _cost_rose
            elif refusal is not None:
                self.audit(by, action, target=target, detail=refusal, outcome="refused", conn=conn)
            else:
                self._release(conn, row, verdict, by, reason, estimate_micros)
                after: dict[str, Any] = {
                    "state": verdict,
                    "approval": row.id,
                    "estimate": from_micros(estimate_micros or row.estimate_micros),
                    "threshold": from_micros(row.threshold_micros),
                    "currency": row.currency,
                    "requested_by": row.requested_by,
                }
                if estimate_micros is not None and estimate_micros != row.estimate_micros:
                    after["estimate_requested"] = from_micros(row.estimate_micros)
                self.audit(
                    by,
                    action,
                    target=target,
                    before={"state": "waiting"},
                    after=after,
                    detail=reason,
                    conn=conn,
                )
        if rose is not None:
            raise rose
        if refusal is not None:
            raise ApprovalError(refusal)
        found = self.approval(approval_id)
        assert found is not None
        return found

    def _cost_rose(
        self, conn: Connection, row: Any, by: str, shown: int, now_micros: int
    ) -> CostRose:
        """Not approved: it costs ``now_micros``, more than the ``shown`` the approver saw. The
        request (and a held send) now shows that figure — so that an approval is always of a
        cost its approver saw — and the refused approval is audited with before → after."""
        cur = row.currency
        told = (
            f"It costs {_amount(now_micros, cur)} now, more than the {_amount(shown, cur)} "
            "shown when it was approved: nothing was approved or sent. The request now shows "
            f"{_amount(now_micros, cur)}; approve it again to send it at that cost, or reject it."
        )
        conn.execute(
            update(s.approvals)
            .where(s.approvals.c.id == row.id, s.approvals.c.state == "waiting")
            .values(estimate_micros=now_micros)
        )
        if row.kind == "send":
            sc = s.sends.c
            conn.execute(
                update(s.sends)
                .where(sc.client_ref == row.ref, sc.state == "awaiting")
                .values(estimated_micros=now_micros, updated_at=self.now())
            )
        self.audit(
            by,
            "approve",
            target=_target(row.kind, row.ref),
            before={"estimate": from_micros(shown), "currency": cur},
            after={"estimate": from_micros(now_micros), "currency": cur, "approval": row.id},
            detail=told,
            outcome="refused",
            conn=conn,
        )
        return CostRose(told, shown_micros=shown, now_micros=now_micros)

    def _release(
        self,
        conn: Connection,
        row: Any,
        verdict: str,
        by: str,
        reason: str,
        estimate_micros: int | None,
    ) -> None:
        """Move the request's send or campaign on from ``awaiting`` (in the decision's
        transaction: a subject that is not awaiting any more rolls the decision back)."""
        now = self.now()
        if row.kind == "campaign":
            status, error = {
                "approved": ("planned", None),
                "rejected": ("rejected", f"Rejected by {by}: {reason}"),
                "withdrawn": ("cancelled", f"Withdrawn by {by} before approval"),
            }[verdict]
            c = s.campaigns.c
            moved = conn.execute(
                update(s.campaigns)
                .where(c.id == int(row.ref), c.status == "awaiting")
                .values(status=status, error=error, updated_at=now)
            ).rowcount
        else:
            values: dict[str, Any] = {"state": verdict, "updated_at": now}
            if verdict == "approved":
                values["state"] = "pending"
                if estimate_micros is not None:
                    values["estimated_micros"] = estimate_micros
            elif verdict == "rejected":
                values["error"] = f"Rejected by {by}: {reason}"
            else:
                values["error"] = f"Withdrawn by {by} before approval"
            sc = s.sends.c
            moved = conn.execute(
                update(s.sends)
                .where(sc.client_ref == row.ref, sc.state == "awaiting")
                .values(**values)
            ).rowcount
        if moved != 1:
            raise ApprovalError(
                f"The {row.kind} of this request no longer waits for approval: nothing was changed."
            )

    # -- reading ------------------------------------------------------------------------------

    def approval(self, approval_id: int) -> Approval | None:
        with reading(self.engine) as conn:
            row = conn.execute(select(s.approvals).where(s.approvals.c.id == approval_id)).first()
        return Approval.from_row(row) if row is not None else None

    def approval_of(self, kind: str, ref: str | int) -> Approval | None:
        """The newest request for this campaign (its id) or send (its clientRef), or None."""
        t = s.approvals.c
        query = (
            select(s.approvals)
            .where(t.kind == kind, t.ref == str(ref))
            .order_by(t.id.desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            row = conn.execute(query).first()
        return Approval.from_row(row) if row is not None else None

    def approvals(
        self,
        *,
        states: Sequence[str] | None = None,
        requested_by: str | None = None,
        kinds: Sequence[str] | None = None,
        refs: Sequence[str] | None = None,
        decided: bool | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[Approval]:
        """Approval requests, newest first (``oldest_first``: the queue's order), filtered."""
        t = s.approvals.c
        query = select(s.approvals)
        if states is not None:
            query = query.where(t.state.in_(list(states)))
        if requested_by is not None:
            query = query.where(t.requested_by == requested_by)
        if kinds is not None:
            query = query.where(t.kind.in_(list(kinds)))
        if refs is not None:
            query = query.where(t.ref.in_([str(r) for r in refs]))
        if decided is not None:
            query = query.where(t.decided_at.is_not(None) if decided else t.decided_at.is_(None))
        order = t.id.asc() if oldest_first else t.id.desc()
        with reading(self.engine) as conn:
            rows = conn.execute(query.order_by(order).limit(limit))
            return [Approval.from_row(row) for row in rows]

    def approvers(self, *, besides: str | None = None) -> list[str]:
        """The members who may approve (finance, admin), but ``besides`` (who asked)."""
        return [
            m.email
            for m in self.members()
            if m.email != besides and allowed(parse_roles(m.roles), Permission.APPROVE)
        ]


def _standing(conn: Connection, kind: str, requester: str) -> str | None:
    """Why a request by ``requester`` cannot be approved any more — they were removed from the
    team, or may no longer send (a send) or run campaigns (a campaign) — or None. The local
    operator (a request made without sign-in) stands, and so does the command line's
    (``command line (<OS user>)``: whoever runs it with the ledger and the key acts for the
    team, ``kedacore.campaign.cli``)."""
    if requester == LOCAL_OPERATOR or requester.startswith(COMMAND_LINE):
        return None
    need = Permission.CAMPAIGNS if kind == "campaign" else Permission.SEND
    doing = "run campaigns" if kind == "campaign" else "send"
    try:
        email = normalize_email(requester)
    except ValueError:
        row = None
    else:
        m = s.members.c
        query = select(m.roles).where(m.email == email, m.removed_at.is_(None))
        row = conn.execute(query).first()
    if row is None:
        return (
            f"{requester}, who asked for it, is no longer a member of the team: it cannot be "
            "approved. Reject it instead (with the reason) to close it."
        )
    roles = parse_roles(row.roles)
    if not allowed(roles, need):
        held = ", ".join(sorted(roles)) or "none"
        return (
            f"{requester}, who asked for it, may no longer {doing} (roles: {held}): it cannot "
            "be approved. Reject it instead (with the reason) to close it."
        )
    return None


def _refusal(row: Any, action: str, by: str) -> str | None:
    """Why ``by`` may not take this decision on the request ``row``, or None."""
    if row.state != "waiting":
        who = row.decided_by or "someone"
        if row.state == "withdrawn":
            return f"It is no longer waiting: {who} withdrew it{_when(row.decided_at)}."
        return f"It is no longer waiting: {who} {row.state} it{_when(row.decided_at)}."
    if action == "withdraw":
        if by != row.requested_by:
            return f"Only {row.requested_by}, who asked for it, can withdraw it."
        return None
    if by == row.requested_by:
        return (
            f"{by} asked for it: nobody approves or rejects their own request. Another finance "
            "or admin member must decide it."
        )
    return None
