"""The table a recipients file becomes (:class:`RecipientFile`) and how its columns are found:
the phone, country and sender columns by their usual names, compared by :func:`column_key`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Column names are compared after column_key(): case, spaces, "_" and "-" do not matter.
PHONE_COLUMNS = ("phone", "phonenumber", "number", "mobile", "mobilenumber", "msisdn", "cell")
PHONE_COLUMNS += ("cellphone", "tel", "telephone", "recipient")
COUNTRY_COLUMNS = ("country", "countrycode", "region", "iso")
SENDER_COLUMNS = ("sender", "senderid")


def column_key(name: str) -> str:
    """A column name as placeholders and known names are matched: case, spaces, _ and - ignored."""
    return "".join(ch for ch in name.casefold() if ch not in " _-\t")


@dataclass(frozen=True, slots=True)
class RecipientFile:
    """The rows of a recipients file, as text; ``broken`` are rows that could not be read."""

    columns: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (row number in the file, cells)
    broken: tuple[tuple[int, str], ...]  # (row number, why)
    phone_column: str
    country_column: str | None
    sender_column: str | None
    encoding: str  # "xlsx" for a workbook
    delimiter: str | None


def _find(columns: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)
