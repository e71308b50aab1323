"""Notifications: usage alerts, caps that block, the balance below its floor, campaigns paused
or failed, what waits for approval — by e-mail (SMTP) and Slack-compatible JSON webhooks, once
per cause per UTC day.

- ``config``: ``[smtp]`` and the console's address from secrets, the recipients' checks, how
  a webhook is shown (masked);
- ``causes``: what calls for a notification and its message (plain functions);
- ``deliver``: SMTP and webhooks, in parallel, each within a short timeout;
- ``watcher``: :class:`Notifier`, the thread that looks, claims, delivers and audits.

The notifications and their deliveries are kept in the ledger (``kedacore.ledger.notices``).
No Streamlit here.
"""

from kedacore.notify.causes import KINDS, Notice, Scene, detect
from kedacore.notify.config import (
    DEFAULT_CONSOLE_URL,
    NotifyConfig,
    SmtpConfig,
    check_webhook,
    interval,
    mask_webhook,
    masked_webhooks,
    notify_config,
    parse_emails,
    parse_webhooks,
    smtp_config,
)
from kedacore.notify.deliver import deliver, payload, post_webhook, send_mail
from kedacore.notify.watcher import Notifier

__all__ = [
    "DEFAULT_CONSOLE_URL",
    "KINDS",
    "Notice",
    "Notifier",
    "NotifyConfig",
    "Scene",
    "SmtpConfig",
    "check_webhook",
    "deliver",
    "detect",
    "interval",
    "mask_webhook",
    "masked_webhooks",
    "notify_config",
    "parse_emails",
    "parse_webhooks",
    "payload",
    "post_webhook",
    "send_mail",
    "smtp_config",
]
