"""Finance → Notifications: how notifications are sent, who receives them, a test, and the list.

Causes (usage alert, a cap blocking, the balance below its floor, a campaign paused or failed,
something waiting for approval) are found by the console's notifier thread, each once per UTC
day, failed deliveries tried again for up to a day (``kedacore.notify``); this page only
configures and lists. The pieces are in ``console.finance.notifications``.
"""

from __future__ import annotations

import streamlit as st

from console.finance.notifications import (
    configure,
    history,
    how_sent,
    look_now,
    recipients,
    send_test,
)
from console.shell import page_setup
from kedacore.team import Permission

console = page_setup(
    "Notifications",
    "E-mail and webhook notifications: where they go, and what was sent.",
    needs=Permission.NOTIFICATIONS,
    need_connection=False,
)
config = configure(console.runtime)

st.subheader("How they are sent")
how_sent(config, console.runtime, console.tz)

st.subheader("Recipients")
recipients(console.ledger, config)
send_test(console.ledger, console.runtime)

st.subheader("Sent")
look_now(console.ledger, console.runtime)
history(console.ledger, console.tz)
