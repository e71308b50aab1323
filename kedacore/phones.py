"""Phone numbers: national or E.164 input → E.164, with the reason when a number is refused."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}

_VALIDATION_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for the country",
}


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    """One input number: its E.164 form and country, or why it was refused."""

    raw: str
    e164: str | None = None
    country: str | None = None  # ISO 3166 region of the number
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class NumberReport:
    """The outcome of parsing many numbers, in input order."""

    valid: list[ParsedNumber] = field(default_factory=list)
    invalid: list[ParsedNumber] = field(default_factory=list)
    duplicates: list[ParsedNumber] = field(default_factory=list)

    @property
    def e164(self) -> list[str]:
        return [n.e164 for n in self.valid if n.e164]

    def by_country(self) -> dict[str, list[str]]:
        return group_by_country(self.valid)


def supported_regions() -> frozenset[str]:
    return frozenset(phonenumbers.SUPPORTED_REGIONS)


def parse_number(raw: object, country_code: str | None = None) -> ParsedNumber:
    """Parse one number, national (with ``country_code``) or E.164.

    Args:
        raw: the number as typed; spaces, dashes and brackets are allowed.
        country_code: ISO 3166 alpha-2 region for national numbers; when given, an
            E.164 number of another country is refused.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return ParsedNumber(str(raw) if raw is not None else "", error="empty")
    region = country_code.upper() if country_code else None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        return ParsedNumber(text, error=f"unknown country code {country_code!r}")
    digits = "+" + text[2:] if text.startswith("00") else text
    international = digits.startswith("+")
    try:
        number = phonenumbers.parse(digits, None if international else region)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "not a phone number")
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE and not international:
            reason = "national number without a country: use +<country code> or pick a country"
        return ParsedNumber(text, error=reason)
    number_region = phonenumbers.region_code_for_number(number)
    if not phonenumbers.is_valid_number(number):
        reason = _VALIDATION_REASONS.get(
            phonenumbers.is_possible_number_with_reason(number), "not a valid number"
        )
        if reason == "not a valid number" and number_region:
            reason = f"not a valid {number_region} number"
        return ParsedNumber(text, error=reason)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if region is not None and number_region != region:
        return ParsedNumber(
            text, e164, number_region, error=f"belongs to {number_region}, not {region}"
        )
    return ParsedNumber(text, e164, number_region)


def parse_numbers(raws: Iterable[object], country_code: str | None = None) -> NumberReport:
    """Parse many numbers; a repeat of an E.164 number already seen is a duplicate."""
    report = NumberReport()
    seen: set[str] = set()
    for raw in raws:
        parsed = parse_number(raw, country_code)
        if not parsed.valid:
            report.invalid.append(parsed)
        elif parsed.e164 in seen:
            report.duplicates.append(parsed)
        else:
            seen.add(parsed.e164)  # type: ignore[arg-type]
            report.valid.append(parsed)
    return report


def split_numbers(text: str) -> list[str]:
    """Numbers pasted as text: one per line, or separated by commas or semicolons."""
    parts = text.replace(";", "\n").replace(",", "\n").splitlines()
    return [p.strip() for p in parts if p.strip()]


def group_by_country(numbers: Iterable[ParsedNumber]) -> dict[str, list[str]]:
    """E.164 numbers grouped by their country, countries sorted."""
    groups: dict[str, list[str]] = defaultdict(list)
    for n in numbers:
        if n.valid and n.e164 and n.country:
            groups[n.country].append(n.e164)
    return dict(sorted(groups.items()))
