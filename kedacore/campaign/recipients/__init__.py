"""A campaign's recipients file (CSV or XLSX) and its message template.

:func:`read_recipients` turns the file into rows of text — encoding and delimiter detected,
rows that cannot be read kept (with their row number) instead of dropped — and finds the
phone, country and sender columns; every column is a variable for :func:`parse_template`.
``kedacore.campaign.plan`` validates the rows, renders the texts and groups them into requests.

A file comes from whoever uploads it, so everything is bounded before the work it would cost
(:class:`RecipientLimits`, docs/campaigns.md "Limits"): its size; its rows, columns and cell
length while it is read, stopping at the first one over; for a workbook, every part's size and
packing ratio from the zip directory before any XML is read, and the bytes actually unpacked
while reading (never more than the directory declared, nor than the limit in all). A file over
a limit raises :class:`RecipientsLimitError`, whose message names the limit and what to do.

The work is done a piece at a time — text decoded a megabyte at a time, XML fed to the
parser 64 KB at a time — so no single step holds the interpreter (and the server's other
threads, such as the callback receiver) for long, and nothing but the rows is kept.

The package, one module a concern: :mod:`.limits` (the limits, the errors and their
sentences), :mod:`.columns` (the table and its columns), :mod:`.rows` (the row collector the
readers share), :mod:`.csv_file`, :mod:`.xlsx_zip` and :mod:`.xlsx_file` (the readers),
:mod:`.table` (:func:`read_recipients`), :mod:`.template`. Every public name is here.
"""

from kedacore.campaign.recipients.columns import (
    COUNTRY_COLUMNS,
    PHONE_COLUMNS,
    SENDER_COLUMNS,
    RecipientFile,
    column_key,
)
from kedacore.campaign.recipients.csv_file import DELIMITERS
from kedacore.campaign.recipients.limits import (
    LIMIT_SETTINGS,
    MAX_CELL_CHARS,
    MB,
    XLSX_MAX_PARTS,
    XLSX_RATIO_FROM,
    RecipientLimits,
    RecipientsError,
    RecipientsLimitError,
    load_limits,
)
from kedacore.campaign.recipients.table import read_recipients
from kedacore.campaign.recipients.template import Template, check_sender, parse_template
from kedacore.campaign.recipients.xlsx_file import XLSX_MAX_STYLES

__all__ = [
    "COUNTRY_COLUMNS",
    "DELIMITERS",
    "LIMIT_SETTINGS",
    "MAX_CELL_CHARS",
    "MB",
    "PHONE_COLUMNS",
    "SENDER_COLUMNS",
    "XLSX_MAX_PARTS",
    "XLSX_MAX_STYLES",
    "XLSX_RATIO_FROM",
    "RecipientFile",
    "RecipientLimits",
    "RecipientsError",
    "RecipientsLimitError",
    "Template",
    "check_sender",
    "column_key",
    "load_limits",
    "parse_template",
    "read_recipients",
]
