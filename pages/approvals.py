"""Finance → Approvals: what waits for a second person (maker–checker), and one's own requests.

A send or campaign estimated over the team's approval threshold waits here, nothing sent or
frozen, until a finance or admin member other than its requester approves it (the cost, the
balance and the caps are checked again first, then it goes out) or rejects it — each with a
reason; its requester is mailed the decision when ``[smtp]`` is configured. Whoever sends
sees their own requests — the decision and its reason first — and can withdraw one still
waiting. Views and decisions: ``console.messaging.approvals``.
"""

from __future__ import annotations

from console.messaging import approvals as av
from console.shell import page_setup
from kedacore.team import Permission

console = page_setup(
    "Approvals",
    "Sends and campaigns over the approval threshold wait here for a second person.",
    needs=(Permission.APPROVE, Permission.SEND, Permission.CAMPAIGNS),
)
av.flash()  # what the last decision did
av.threshold_line(console)

if console.actor.can(Permission.APPROVE):
    av.queue(console)
if console.actor.can(Permission.SEND) or console.actor.can(Permission.CAMPAIGNS):
    av.my_requests(console)
if console.actor.can(Permission.APPROVE):
    av.decided(console)
