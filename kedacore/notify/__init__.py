"""Notifications: usage alerts, caps that block, the balance below its floor, campaigns paused
or failed, what waits for approval — by e-mail (SMTP) and Slack-compatible JSON webhooks, once
per cause per UTC day.

- ``config``: ``[smtp]`` and the console's address from secrets, the recipients' checks, how
  a webhook is shown (masked);
- ``causes``: what calls for a notification and its message (plain functions);
- ``deliver``: SMTP and webhooks, in parallel, each within a short timeout; a webhook reaches
  public addresses only (checked after DNS, at save and at delivery, unless the operator sets
  ``KEDA_NOTIFY_ALLOW_PRIVATE_WEBHOOKS=true``), is not redirected, and only its HTTP status
  is kept;
- ``watcher``: :class:`Notifier`, the thread that looks, raises, claims each attempt,
  delivers, tries again (1, 5, 15 minutes, then hourly, for up to a day) and audits.

The notifications and their deliveries are kept in the ledger (``kedacore.ledger.notices``).
No Streamlit here.
"""

from kedacore.notify.causes import KINDS, Notice, Scene, detect
from kedacore.notify.config import (
    ALLOW_PRIVATE_WEBHOOKS,
    DEFAULT_CONSOLE_URL,
    NotifyConfig,
    SmtpConfig,
    WebhookRefused,
    allow_private_webhooks,
    check_webhook,
    interval,
    mask_webhook,
    masked_webhooks,
    notify_config,
    parse_emails,
    parse_webhooks,
    smtp_config,
    webhook_addresses,
)
from kedacore.notify.deliver import deliver, payload, post_webhook, send_mail
from kedacore.notify.watcher import Notifier

__all__ = [
    "ALLOW_PRIVATE_WEBHOOKS",
    "DEFAULT_CONSOLE_URL",
    "KINDS",
    "Notice",
    "Notifier",
    "NotifyConfig",
    "Scene",
    "SmtpConfig",
    "WebhookRefused",
    "allow_private_webhooks",
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
    "webhook_addresses",
]
