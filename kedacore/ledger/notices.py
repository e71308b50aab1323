"""Notifications: one per cause per day, with where each went."""

from __future__ import annotations

from typing import Any


class NoticesMixin:
    engine: Any
