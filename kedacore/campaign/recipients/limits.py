"""What a recipients file may hold (:class:`RecipientLimits`, docs/campaigns.md "Limits"), the
errors a file or template is refused with, and the sentences that name an exceeded limit."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

MB = 1024 * 1024  # as Streamlit counts server.maxUploadSize


class RecipientsError(ValueError):
    """The file or the template cannot be used at all (no phone column, unknown placeholder…)."""


class RecipientsLimitError(RecipientsError):
    """The file is over one of :class:`RecipientLimits`; the message is a whole sentence naming
    the limit (``setting``, e.g. ``KEDA_MAX_ROWS``) and what to do."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True, slots=True)
class RecipientLimits:
    """What a recipients file may hold; each is a setting of the console (docs/campaigns.md).

    The defaults keep the check of the largest file allowed — 200,000 rows, each of which
    costs 30–60 µs, most of it parsing its phone number — within 20 s and a few hundred MB
    (docs/campaigns.md, "Limits"); an operator who needs larger campaigns raises them.
    """

    upload_mb: int = 50  # KEDA_MAX_UPLOAD_MB: the file's size
    rows: int = 200_000  # KEDA_MAX_ROWS: rows below the header (blank ones included)
    columns: int = 100  # KEDA_MAX_COLUMNS
    cell_chars: int = 2_000  # KEDA_MAX_CELL_CHARS: characters in one cell (a whole SMS fits)
    xlsx_mb: int = 200  # KEDA_MAX_XLSX_MB: a workbook's parts unpacked, in all
    xlsx_ratio: int = 100  # KEDA_MAX_XLSX_RATIO: unpacked ÷ packed size of a part over 1 MB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{LIMIT_SETTINGS[f.name]} must be a whole number of at least 1")
        if self.cell_chars > MAX_CELL_CHARS:
            raise ValueError(f"KEDA_MAX_CELL_CHARS can be at most {MAX_CELL_CHARS:,}")

    @property
    def upload_bytes(self) -> int:
        return self.upload_mb * MB

    @property
    def xlsx_bytes(self) -> int:
        return self.xlsx_mb * MB

    @property
    def longest_row(self) -> int:
        """Characters a CSV row can take within the limits: every cell full, its quotes doubled."""
        return self.columns * (2 * self.cell_chars + 3) + 2


LIMIT_SETTINGS = {
    "upload_mb": "KEDA_MAX_UPLOAD_MB",
    "rows": "KEDA_MAX_ROWS",
    "columns": "KEDA_MAX_COLUMNS",
    "cell_chars": "KEDA_MAX_CELL_CHARS",
    "xlsx_mb": "KEDA_MAX_XLSX_MB",
    "xlsx_ratio": "KEDA_MAX_XLSX_RATIO",
}
# csv refuses a field over 131,072 characters (csv.field_size_limit, process-wide: left alone).
MAX_CELL_CHARS = 100_000
XLSX_MAX_PARTS = 1_000  # files in a workbook's zip (one has a dozen; a bomb can have millions)
XLSX_RATIO_FROM = MB  # the packing ratio is checked for parts larger than this
_XLSX_DIRECTORY = 1 * MB  # bytes of zip directory read (a thousand parts take ~100 KB)


def load_limits(
    secrets: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> RecipientLimits:
    """The limits from the environment, then ``secrets["keda"]``, then the defaults — looked
    up as ``kedacore.settings.load_settings`` does (``KEDA_MAX_ROWS`` or ``keda_max_rows``).

    Raises:
        ValueError: a setting that is not a whole number of at least 1 (named).
    """
    env = os.environ if env is None else env
    section: Mapping[str, Any] = {}
    if secrets is not None:
        try:
            section = secrets.get("keda") or {}
        except Exception:  # st.secrets raises when no secrets file exists
            section = {}
    values = {}
    for name, setting in LIMIT_SETTINGS.items():
        raw = env.get(setting)
        if raw in (None, ""):
            raw = section.get(setting.lower())
        if raw in (None, ""):
            continue
        try:
            values[name] = int(str(raw).strip().replace(",", "").replace("_", ""))
        except ValueError:
            raise ValueError(f"{setting} must be a whole number, not {str(raw)!r}") from None
    return RecipientLimits(**values)


def _over(setting: str, sentence: str) -> RecipientsLimitError:
    return RecipientsLimitError(sentence, setting)


def _too_many_rows(limits: RecipientLimits) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_ROWS",
        f"The file has more than {limits.rows:,} rows, the most a campaign takes "
        "(KEDA_MAX_ROWS). Split it into smaller files.",
    )


def _too_many_columns(limits: RecipientLimits) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_COLUMNS",
        f"The file has more than {limits.columns:,} columns, the most a campaign takes "
        "(KEDA_MAX_COLUMNS). Keep the columns the message needs and save it again.",
    )


def _cell_too_long(limits: RecipientLimits, row: int | None) -> RecipientsLimitError:
    where = f"Row {row:,} has a cell" if row is not None else "The file has a cell"
    return _over(
        "KEDA_MAX_CELL_CHARS",
        f"{where} of more than {limits.cell_chars:,} characters, the longest a campaign "
        "takes (KEDA_MAX_CELL_CHARS). Shorten it and save the file again.",
    )


def _row_too_long(limits: RecipientLimits, row: int) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_CELL_CHARS",
        f"Row {row:,} runs on for more than {limits.longest_row:,} characters: a quote that "
        f"is never closed, or cells longer than {limits.cell_chars:,} characters, the longest "
        "a campaign takes (KEDA_MAX_CELL_CHARS). Correct it and save the file again.",
    )


def _workbook_too_big(limits: RecipientLimits) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_XLSX_MB",
        f"The workbook unpacks to more than {limits.xlsx_mb:,} MB, the most a campaign takes "
        "(KEDA_MAX_XLSX_MB). Save it as CSV, or split it into smaller files.",
    )


def _too_large(limits: RecipientLimits) -> RecipientsLimitError:
    return _over(
        "KEDA_MAX_UPLOAD_MB",
        f"The file is larger than {limits.upload_mb:,} MB, the largest a campaign takes "
        "(KEDA_MAX_UPLOAD_MB). Split it into smaller files.",
    )
