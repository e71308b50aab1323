"""Phone numbers: national or E.164 input → E.164, with the reason when a number is refused."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumber, PhoneNumberFormat

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
    number_region, valid = region_and_validity(number)
    if not valid:
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


# -- region and validity -------------------------------------------------------------------
#
# region_code_for_number() and is_valid_number() each walk the metadata's number types in a
# fixed order — premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail,
# and only then fixed line and mobile — through the re module's cache; for a country code of
# several regions (+1, +44, +7) the first already did the whole validation, which the second
# repeats. Parsing a campaign's 10,000 numbers spent as long on that as on the parse itself.
# Below, the same rules from the same metadata: the patterns compiled once per region, a number
# valid when it matches the general description and any type (which one does not matter, so
# the common fixed line and mobile come first), each number checked once.
# tests/kedacore/test_phones.py holds both equal to phonenumbers' own functions for every region.


@dataclass(frozen=True, slots=True)
class _Desc:
    """One number type's description: the lengths it allows and its national pattern."""

    lengths: frozenset[int]
    pattern: re.Pattern[str] | None  # None: the type has no numbers

    @classmethod
    def of(cls, desc: Any) -> _Desc | None:
        if desc is None:
            return None
        pattern = desc.national_number_pattern
        return cls(frozenset(desc.possible_length or ()), re.compile(pattern) if pattern else None)

    def matches(self, nsn: str) -> bool:
        if self.lengths and len(nsn) not in self.lengths:
            return False
        return self.pattern is not None and self.pattern.fullmatch(nsn) is not None


@dataclass(frozen=True, slots=True)
class _Rules:
    """What makes a national number valid in one region, and which of its numbers it owns."""

    general: _Desc | None
    types: tuple[_Desc, ...]  # fixed line and mobile first
    leading_digits: re.Pattern[str] | None  # the region's own numbers, among its code's regions

    def valid(self, nsn: str) -> bool:
        """Whether phonenumbers gives this number a type (anything but UNKNOWN)."""
        if self.general is None or not self.general.matches(nsn):
            return False
        return any(desc.matches(nsn) for desc in self.types)


_RULES: dict[tuple[int, str], _Rules] = {}  # by (country code, region id): fixed metadata


def _rules(metadata: PhoneMetadata) -> _Rules:
    key = (metadata.country_code, metadata.id)
    found = _RULES.get(key)
    if found is None:
        found = _RULES[key] = _compile_rules(metadata)
    return found


def _compile_rules(md: PhoneMetadata) -> _Rules:
    # With the same pattern for both, phonenumbers tries mobile only as a fixed line.
    mobile = () if md.same_mobile_and_fixed_line_pattern else (md.mobile,)
    others = (md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number)
    others += (md.pager, md.uan, md.voicemail)
    types = tuple(d for d in map(_Desc.of, (md.fixed_line, *mobile, *others)) if d is not None)
    leading = re.compile(md.leading_digits) if md.leading_digits is not None else None
    return _Rules(_Desc.of(md.general_desc), types, leading)


def region_and_validity(number: PhoneNumber) -> tuple[str | None, bool]:
    """``phonenumbers.region_code_for_number`` and ``is_valid_number`` of a parsed number,
    both from one pass over the patterns (see above)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code)
    if regions is None:
        return None, False
    nsn = phonenumbers.national_significant_number(number)
    if len(regions) == 1:
        return regions[0], _valid_for_region(number, nsn, regions[0])
    for region in regions:  # the first region that claims the number, as phonenumbers picks
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        rules = _rules(metadata)
        if rules.leading_digits is not None:
            if rules.leading_digits.match(nsn):
                return region, _valid_for_region(number, nsn, region)
        elif rules.valid(nsn):
            return region, True
    return None, False


def _valid_for_region(number: PhoneNumber, nsn: str, region: str) -> bool:
    """``phonenumbers.is_valid_number_for_region``."""
    code = number.country_code
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region.upper())
    if metadata is None:
        return False
    non_geo = region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
    if not non_geo and code != phonenumbers.country_code_for_valid_region(region):
        return False
    return _rules(metadata).valid(nsn)


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
