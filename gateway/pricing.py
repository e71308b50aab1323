"""The price table: price per SMS segment by ISO country code, in integer micro-units."""

from __future__ import annotations

from collections.abc import Mapping

from kedacore.money import json_number, to_micros

# USD per segment. CN and US are the seed's own figures; the others are in line with the
# public list prices of large aggregators (cheap in India and Latin America, dear in
# Indonesia, Nigeria and Russia, where local regulation adds fees).
DEFAULT_PRICES: dict[str, str] = {
    "AE": "0.05",
    "AR": "0.06",
    "AT": "0.09",
    "AU": "0.045",
    "BE": "0.085",
    "BR": "0.03",
    "CA": "0.05",
    "CH": "0.06",
    "CL": "0.05",
    "CN": "0.048",
    "CO": "0.01",
    "DE": "0.085",
    "DK": "0.055",
    "EG": "0.15",
    "ES": "0.07",
    "FI": "0.08",
    "FR": "0.075",
    "GB": "0.045",
    "HK": "0.045",
    "ID": "0.35",
    "IE": "0.07",
    "IL": "0.1",
    "IN": "0.006",
    "IT": "0.08",
    "JP": "0.07",
    "KE": "0.1",
    "KR": "0.03",
    "MX": "0.04",
    "MY": "0.04",
    "NG": "0.3",
    "NL": "0.09",
    "NO": "0.07",
    "NZ": "0.09",
    "PH": "0.2",
    "PL": "0.035",
    "PT": "0.04",
    "RU": "0.4",
    "SA": "0.04",
    "SE": "0.06",
    "SG": "0.04",
    "TH": "0.025",
    "TR": "0.015",
    "TW": "0.065",
    "US": "0.05",
    "VN": "0.07",
    "ZA": "0.025",
}


class PriceTable:
    """Prices per segment; immutable once built."""

    def __init__(self, prices: Mapping[str, str] | None = None, currency: str = "USD") -> None:
        source = DEFAULT_PRICES if prices is None else prices
        self.currency = currency
        self._micros = {code.upper(): to_micros(value) for code, value in source.items()}
        if any(v <= 0 for v in self._micros.values()):
            raise ValueError("every price per segment must be positive")

    def __contains__(self, country: object) -> bool:
        return isinstance(country, str) and country in self._micros

    def per_segment(self, country: str) -> int:
        """Micro-units per segment for a country in the table (KeyError otherwise)."""
        return self._micros[country]

    def to_wire(self) -> dict[str, object]:
        """The ``GET /pricing`` data, countries sorted by code."""
        return {
            "currency": self.currency,
            "countries": [
                {"countryCode": code, "pricePerSegment": json_number(micros)}
                for code, micros in sorted(self._micros.items())
            ],
        }
