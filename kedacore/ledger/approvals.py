"""What waits for a second person (maker–checker): approval requests and their decisions."""

from __future__ import annotations

from typing import Any


class ApprovalsMixin:
    engine: Any
