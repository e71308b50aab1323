"""The Spend page's CSV and XLSX exports: ``kedacore.exports``, the one writer of every export.

Kept so that ``from kedacore.analytics import to_csv, to_xlsx`` goes on working; the rules
(exact decimals, UTC times with ``Z``, no cell a spreadsheet runs) are in ``kedacore.exports``.
"""

from kedacore.exports import cell_text, iso_utc, to_csv, to_xlsx

__all__ = ["cell_text", "iso_utc", "to_csv", "to_xlsx"]
