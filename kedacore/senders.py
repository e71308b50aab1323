"""The sender-id rule: one function for the console's form and the gateway's check (2001).

A sender id is 1–11 ASCII letters and digits (``Shop``, ``ACME01``), or a number of up to 15
digits with an optional leading ``+`` (``+123456789012345``). A protocol primitive: the
gateway may import it (tests/test_architecture.py, ``GATEWAY_MAY_USE``).
"""

from __future__ import annotations

import re
from typing import Any

ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9]{1,11}")
NUMERIC_SENDER = re.compile(r"\+?[0-9]{1,15}")
# The gateway's words in its 2001 answer (``data.errors[].message`` for ``senderId``).
SENDER_RULE = "must be 1-11 letters and digits, or a number of up to 15 digits"


def sender_problem(sender: Any) -> str | None:
    """Why ``sender`` is not a valid sender id (:data:`SENDER_RULE`), or None when it is one.

    ``None`` itself is refused too: a payload leaves ``senderId`` out to get the default.
    """
    if isinstance(sender, str) and (
        ALPHANUMERIC_SENDER.fullmatch(sender) or NUMERIC_SENDER.fullmatch(sender)
    ):
        return None
    return SENDER_RULE
