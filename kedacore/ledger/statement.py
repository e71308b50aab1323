"""The money statement: by day, opening balance + movements = closing balance."""

from __future__ import annotations

from typing import Any


class StatementMixin:
    engine: Any
