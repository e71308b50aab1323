"""How many clicks of one link from one client address are recorded in a time window.

The redirect ``GET /s/{code}`` answers its 302 every time; what is bounded is what a burst
can write: at most ``limit`` clicks per (link, client address) are recorded in a window of
``window`` seconds that starts with the first recorded click (a click past the bound is
neither counted in ``clicks``/``uniqueClicks`` nor sent as a ``CLICKED`` callback). So one
address can add at most ``limit`` to a link's figures per window, whatever user agent it
claims. The counts live in memory (one ``serve`` process per database): a restart starts
them afresh.
"""

from __future__ import annotations

# Past this many windows, the ended ones are dropped at once rather than at the next
# maintenance; the threshold then doubles over what is left, so the scans stay amortised.
PRUNE_AT = 100_000


class ClickBound:
    """Fixed windows per (code, address); ``limit`` 0 records every click."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = int(limit)
        self.window = float(window)
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}  # → (start, recorded)
        self._prune_at = PRUNE_AT

    def allows(self, code: str, address: str, now: float) -> bool:
        """Whether a click now would still be recorded (nothing is counted yet)."""
        if self.limit <= 0:
            return True
        start, recorded = self._windows.get((code, address), (now, 0))
        return now - start >= self.window or recorded < self.limit

    def record(self, code: str, address: str, now: float) -> None:
        """Count a recorded click."""
        if self.limit <= 0:
            return
        key = (code, address)
        start, recorded = self._windows.get(key, (now, 0))
        if now - start >= self.window:
            start, recorded = now, 0
        self._windows[key] = (start, recorded + 1)
        if len(self._windows) > self._prune_at:
            self.prune(now)

    def prune(self, now: float) -> None:
        """Forget the windows that have ended."""
        ended = [k for k, (start, _n) in self._windows.items() if now - start >= self.window]
        for key in ended:
            del self._windows[key]
        self._prune_at = max(PRUNE_AT, 2 * len(self._windows))
