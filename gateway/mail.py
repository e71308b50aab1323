"""The mail outbox: the gateway sends no e-mail; it writes each one as a text file to read."""

from __future__ import annotations

import re
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import Connection, update

from gateway.clock import to_datetime
from gateway.db import mail_outbox
from kedacore.private import private_dir, write_private

SENDER = "KedaSMS <no-reply@kedasms.local>"


def write_mail(
    conn: Connection, folder: Path, recipient: str, subject: str, body: str, now_ms: int
) -> Path:
    """Record a mail in the outbox table and write it to ``folder`` as ``NNNNNN-<to>.txt``.

    Called inside the transaction that makes the mail true (a registration), so a mail whose
    transaction rolled back has no row; its file would carry a token that never works.
    """
    mail_id = conn.execute(
        mail_outbox.insert().values(
            recipient=recipient, subject=subject, body=body, created_at=now_ms
        )
    ).inserted_primary_key[0]
    private_dir(folder)  # the mails carry verification tokens
    slug = re.sub(r"[^A-Za-z0-9@._-]", "_", recipient)[:80]
    path = folder / f"{mail_id:06d}-{slug}.txt"
    headers = (
        f"From: {SENDER}\nTo: {recipient}\nSubject: {subject}\n"
        f"Date: {format_datetime(to_datetime(now_ms))}\n"
    )
    write_private(path, headers + "\n" + body)
    conn.execute(update(mail_outbox).where(mail_outbox.c.id == mail_id).values(path=str(path)))
    return path
