"""Delivering a notification: an e-mail through SMTP (``smtplib``) and a JSON POST to each
Slack-compatible webhook (``httpx``), in parallel, each within a short timeout.

Every outcome is a :class:`~kedacore.ledger.notices.Delivery` (channel, the target as it may
be shown, ok or why not); nothing here raises for a server that refuses or does not answer.
Webhook addresses are secrets: they are shown masked, and any error text is scrubbed of them.
A webhook reaches public addresses only (unless the operator allows the local network), is
not redirected, and what it answers is never kept: only its HTTP status.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx

from kedacore.ledger.notices import Delivery
from kedacore.notify.causes import Notice, one_line
from kedacore.notify.config import (
    TIMEOUT,
    Resolver,
    SmtpConfig,
    WebhookRefused,
    mask_webhook,
    webhook_addresses,
)
from kedacore.redaction import redact_secrets, url_secrets

USER_AGENT = "KedaSMS-Console-Notifier/1"


def message(notice: Notice, sender: str, to: Sequence[str]) -> EmailMessage:
    """The e-mail of a notice: plain text, marked as sent by a machine."""
    mail = EmailMessage()
    mail["Subject"] = one_line(notice.subject, 250)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(usegmt=True)
    domain = sender.rpartition("@")[2] or "localhost"
    mail["Message-ID"] = make_msgid(domain=domain if domain.isascii() else "localhost")
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    mail["X-KedaSMS-Cause"] = one_line(notice.cause, 80)
    mail.set_content(notice.body)
    return mail


def _smtp_error(exc: BaseException, smtp: SmtpConfig) -> str:
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        text = f"the server {where} refused the user name or password ({exc.smtp_code})"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        text = f"the server {where} does not offer that ({exc}); check [smtp] security"
    elif isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error
        said = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        text = f"the server {where} answered {exc.smtp_code} {one_line(said, 160)}".rstrip()
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        text = f"the server {where} closed the connection"
    elif isinstance(exc, TimeoutError):
        text = f"the server {where} did not answer within {smtp.timeout:g} s"
    elif isinstance(exc, ssl.SSLError):
        why = one_line(str(exc), 160)
        text = f"TLS with {where} failed ({why}); check [smtp] security and port"
    elif isinstance(exc, OSError):
        why = exc.strerror or type(exc).__name__
        text = f"could not connect to {where} ({why})"
    else:
        text = f"{type(exc).__name__}: {one_line(str(exc), 160)}"
    return redact_secrets(text, [smtp.password] if smtp.password else [])  # never the password


def send_mail(
    smtp: SmtpConfig | None,
    to: Sequence[str],
    notice: Notice,
    *,
    context: ssl.SSLContext | None = None,
) -> list[Delivery]:
    """Mail ``notice`` to every address in one SMTP session; one outcome per address.

    Args:
        context: the TLS context for "starttls" and "ssl" (the system's trusted CAs by default).
    """
    if not to:
        return []
    if smtp is None:
        why = "SMTP is not configured (an [smtp] section in secrets)"
        return [Delivery("email", address, False, why) for address in to]
    context = context or ssl.create_default_context()
    try:
        server: smtplib.SMTP
        if smtp.security == "ssl":
            server = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        else:
            server = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with server:
            if smtp.security == "starttls":
                server.starttls(context=context)
            if smtp.username:
                server.login(smtp.username, smtp.password or "")
            refused = server.send_message(
                message(notice, smtp.sender, to), from_addr=smtp.sender, to_addrs=list(to)
            )
    except smtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
    except (smtplib.SMTPException, OSError) as exc:
        why = _smtp_error(exc, smtp)
        return [Delivery("email", address, False, why) for address in to]
    outcomes = []
    for address in to:
        if address in refused:
            code, said = refused[address]
            text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
            outcomes.append(
                Delivery("email", address, False, f"refused: {code} {one_line(text, 160)}")
            )
        else:
            outcomes.append(Delivery("email", address, True))
    return outcomes


def slack_escape(text: str) -> str:
    """Text for a Slack message: ``&``, ``<`` and ``>`` escaped, so that nothing a person
    typed (a campaign name) becomes a link or an @channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(notice: Notice) -> dict[str, Any]:
    """The webhook body: ``text`` for Slack (and Mattermost, Rocket.Chat, Teams workflows),
    the same facts structured under ``kedasms``."""
    return {
        "text": f"*{slack_escape(notice.subject)}*\n{slack_escape(notice.body)}",
        "kedasms": {
            "cause": notice.cause,
            "kind": notice.kind,
            "subject": notice.subject,
            "link": notice.link,
            "facts": notice.facts,
        },
    }


def post_webhook(
    url: str,
    notice: Notice,
    *,
    timeout: float = TIMEOUT,
    transport: httpx.BaseTransport | None = None,
    context: ssl.SSLContext | None = None,
    allow_private: bool = False,
    resolve: Resolver | None = None,
) -> Delivery:
    """POST the notice's JSON to one webhook; any 2xx answer is delivered.

    The host is resolved and each address checked first (:func:`~kedacore.notify.config.
    webhook_addresses`: loopback, private, link-local… refused unless ``allow_private``), then
    the POST connects to a checked address itself (the Host header and TLS name are the
    webhook's), so a name re-pointed after the check cannot send it elsewhere. Redirects are
    not followed, no proxy from the environment is used, and an answer's body is never read
    into the outcome: a failure says the HTTP status and its standard phrase only.

    Args:
        context: the TLS context for https (the system's trusted CAs by default).
    """
    shown = mask_webhook(url)
    try:
        addresses = webhook_addresses(url, allow_private=allow_private, resolve=resolve)
    except WebhookRefused as exc:
        return Delivery("webhook", shown, False, f"refused: {exc.why}", ref=hook_ref(url))
    answer: httpx.Response | None = None
    error = ""
    for address in addresses[:MAX_ADDRESSES]:
        try:
            answer = _post(url, address, notice, timeout, transport, context)
            break
        except httpx.ConnectError as exc:  # nothing sent: the next address may answer
            error = _error_text(exc, url)
        except httpx.TimeoutException:
            error = f"no answer within {timeout:g} s"
            break
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            error = _error_text(exc, url)
            break
    if answer is None:
        return Delivery("webhook", shown, False, error, ref=hook_ref(url))
    if 200 <= answer.status_code < 300:
        return Delivery("webhook", shown, True, ref=hook_ref(url))
    return Delivery("webhook", shown, False, status_text(answer.status_code), ref=hook_ref(url))


MAX_ADDRESSES = 4  # a host's addresses tried in turn when one refuses the connection


def _post(
    url: str,
    address: str,
    notice: Notice,
    timeout: float,
    transport: httpx.BaseTransport | None,
    context: ssl.SSLContext | None,
) -> httpx.Response:
    """POST to ``url`` through ``address``: the URL's host swapped for the address, the
    Host header and the TLS server name (SNI, certificate check) kept as the URL's host."""
    target = httpx.URL(url.strip())
    headers = {"User-Agent": USER_AGENT, "Host": target.netloc.decode("ascii").rpartition("@")[2]}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(
        timeout=timeout,
        transport=transport,
        verify=context if context is not None else True,
        follow_redirects=False,
        trust_env=False,  # no HTTP(S)_PROXY: the connection goes to the address checked
    ) as client:
        request = client.build_request(
            "POST",
            target.copy_with(host=address.partition("%")[0]),
            json=payload(notice),
            headers=headers,
            extensions=extensions,
        )
        answer = client.send(request, stream=True)  # the body is never read
        answer.close()
        return answer


def status_text(code: int) -> str:
    """``HTTP 403 Forbidden``: the status and its standard phrase (not the server's words)."""
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {code} {phrase}".rstrip()


def _error_text(exc: Exception, url: str) -> str:
    why = redact_secrets(one_line(str(exc) or type(exc).__name__, 200), hook_secrets(url))
    return f"could not connect ({why})"


def hook_ref(url: str) -> str:
    """A webhook's stable reference in a delivery (a digest: never its address), so that a
    retry knows which webhooks had the notification already."""
    return "webhook:" + hashlib.sha256(url.strip().encode()).hexdigest()[:16]


def hook_secrets(url: str) -> list[str]:
    """Every part of a webhook address that may be its secret, longest first: the address,
    its path and query, each path segment and query value (Slack's whole path is the key)."""
    parts = urlsplit(url.strip())
    found = [url.strip(), parts.path.strip("/"), parts.query, *url_secrets(url)]
    found += parts.path.split("/") + [p.partition("=")[2] for p in parts.query.split("&")]
    return sorted({f for f in found if len(f) >= 4}, key=len, reverse=True)


def deliver(
    notice: Notice,
    *,
    emails: Sequence[str],
    webhooks: Sequence[str],
    smtp: SmtpConfig | None,
    context: ssl.SSLContext | None = None,
    transport: httpx.BaseTransport | None = None,
    allow_private: bool = False,
) -> list[Delivery]:
    """Send ``notice`` everywhere at once (the mail and each webhook in parallel): it takes
    about one timeout at worst, however many targets. ``[Delivery("none", …)]`` when there
    is nowhere to send it.

    Args:
        context: the TLS context for SMTP and https webhooks (the system's CAs by default).
        allow_private: webhooks may reach loopback and private addresses
            (``KEDA_NOTIFY_ALLOW_PRIVATE_WEBHOOKS``; see :func:`post_webhook`).
    """
    if not emails and not webhooks:
        return [Delivery("none", "", False, "no recipient is configured")]
    jobs = 1 if emails else 0
    with ThreadPoolExecutor(max_workers=min(8, jobs + len(webhooks))) as pool:
        mail = pool.submit(send_mail, smtp, emails, notice, context=context) if emails else None
        posts = [
            pool.submit(
                post_webhook,
                url,
                notice,
                timeout=TIMEOUT,
                transport=transport,
                context=context,
                allow_private=allow_private,
            )
            for url in webhooks
        ]
        outcomes = list(mail.result()) if mail is not None else []
        outcomes += [p.result() for p in posts]
    return outcomes
