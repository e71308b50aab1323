"""Phone numbers: national or E.164 input → E.164, with the reason when a number is refused."""

from __future__ import annotations

import re
import unicodedata
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


# The longest text taken for one number (E.164 has at most 15 digits; this leaves room for
# spaces, brackets and dashes). Longer text is refused before any per-character work.
MAX_NUMBER_CHARS = 64


def supported_regions() -> frozenset[str]:
    return frozenset(phonenumbers.SUPPORTED_REGIONS)


def parse_number(raw: object, country_code: str | None = None) -> ParsedNumber:
    """Parse one number, national (with ``country_code``) or E.164.

    Args:
        raw: the number as typed: digits, one leading +, spaces and - . ( ) [ ] /;
            letters, an extension or a control character refuse it (``writing_problem``).
        country_code: ISO 3166 alpha-2 region for national numbers; when given, an
            E.164 number of another country is refused.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return ParsedNumber(str(raw) if raw is not None else "", error="empty")
    if len(text) > MAX_NUMBER_CHARS:  # before any per-character work: a megabyte "number"
        return ParsedNumber(
            text[:MAX_NUMBER_CHARS] + "…",
            error=f"is {len(text):,} characters long; a phone number has at most "
            f"{MAX_NUMBER_CHARS}",
        )
    region = country_code.upper() if country_code else None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        return ParsedNumber(text, error=f"unknown country code {country_code!r}")
    problem = writing_problem(text)
    if problem is not None:
        return ParsedNumber(text, error=problem)
    digits = "+" + text[2:] if text.startswith("00") else text
    international = digits.startswith("+")
    try:
        number = phonenumbers.parse(digits, None if international else region)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "not a phone number")
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE and not international:
            reason = "national number without a country: use +<country code> or pick a country"
        return ParsedNumber(text, error=reason)
    number_region, valid, nsn = _region_validity_nsn(number)
    if not valid:
        reason = _VALIDATION_REASONS.get(
            phonenumbers.is_possible_number_with_reason(number), "not a valid number"
        )
        if reason == "not a valid number" and number_region:
            reason = f"not a valid {number_region} number"
        return ParsedNumber(text, error=reason)
    # format_number's E.164 is exactly this (for any number but 0), without its second walk
    # to the national significant number.
    if number.national_number:
        e164 = f"+{number.country_code}{nsn}"
    else:
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if region is not None and number_region != region:
        return ParsedNumber(
            text, e164, number_region, error=f"belongs to {number_region}, not {region}"
        )
    return ParsedNumber(text, e164, number_region)


# -- what a number may be written with ----------------------------------------------------
#
# phonenumbers reads more than digits: it turns letters into digits (+1206555ABCD is
# +12065552223, 1-800-FLOWERS a toll-free number), drops an extension (ext. 77, x77, #77,
# ;ext=77, ,77, ~77), skips invisible characters and ignores text around the number (tel:,
# quotes). Each sends, and charges, a number other than the one written. So before it is
# asked, a number may hold only digits, one + before them, and the separators people write:
# spaces, - . ( ) [ ] / and the full-width and typographic forms phonenumbers reads as the
# same (all of them in its own list of punctuation). Spaces and line breaks around the number
# are trimmed, as before.

_PLUS = frozenset("+\uff0b")
_SEPARATORS = frozenset(
    " \u00a0\u3000"  # spaces: plain, no-break, ideographic
    "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d"  # dashes, minus, katakana ー
    ".\uff0e()\uff08\uff09[]\uff3b\uff3d/\uff0f"  # dots, brackets, slashes
)
# Nearly every number: ASCII digits and separators, at most one + before the digits.
_PLAIN = re.compile(r"[ (\[]*\+?[0-9 ().\[\]/-]*")
# An extension after the number, marked as phonenumbers would find (and drop) it.
_EXTENSION = re.compile(
    r"""\d [\s()\[\]./-]*
    (?P<ext>
        (?: ;\s*ext\s*= | e?xt(?:ension|n)?\.? | \uff45?\uff58\uff54\uff4e? | x | \uff58
          | int | \uff49\uff4e\uff54 | anexo | доб | [#\uff03~\uff5e,;] )
        [\s:.\uff0e,-]* \d+ \s* [#\uff03]?
    ) \s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_WHAT_TO_USE = "use digits, a leading +, spaces and - . ( ) /"


def writing_problem(text: str) -> str | None:
    """Why a number, as written, is refused before it is parsed, or None.

    Letters, an extension, a control or invisible character, any other character that is no
    digit or separator, or a + that is not the first: see the comment above.
    """
    if _PLAIN.fullmatch(text):
        return None
    digits = pluses = 0
    control = invisible = other = None
    letters = late_plus = False
    for ch in text:
        if ch.isdecimal():
            digits += 1
        elif ch in _PLUS:
            pluses += 1
            late_plus = late_plus or digits > 0
        elif ch in _SEPARATORS:
            continue
        else:
            kind = unicodedata.category(ch)
            if kind in ("Cc", "Zl", "Zp"):
                control = control or ch
            elif kind[0] == "C":  # Cf (format: zero-width, direction marks), Co, Cn, Cs
                invisible = invisible or ch
            elif kind[0] == "L":
                letters = True
            else:
                other = other or ch
    if not digits:
        return "not a phone number"
    if control:
        return f"contains a control character (U+{ord(control):04X}): type the number again"
    if invisible:
        return (
            f"contains an invisible character (U+{ord(invisible):04X}), which could hide what "
            "is sent: type the number again"
        )
    extension = _EXTENSION.search(text)
    if extension:
        return (
            f"has an extension ({extension['ext'].strip()}): a text message cannot reach an "
            "extension, give the number without it"
        )
    if letters:
        found = re.findall(r"[^\W\d_]+", text)
        runs = ", ".join(run if len(run) <= 12 else run[:11] + "…" for run in found[:3])
        runs += ", …" if len(found) > 3 else ""
        return (
            f"contains letters ({runs}): letters are not turned into digits, write the number "
            "in digits"
        )
    if other:
        return f"contains {other!r}, which is not part of a phone number ({_WHAT_TO_USE})"
    if pluses > 1:
        return "has more than one +"
    if late_plus:
        return "has a + after the first digit: + comes first, before the country code"
    return None


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
    region, valid, _ = _region_validity_nsn(number)
    return region, valid


def _region_validity_nsn(number: PhoneNumber) -> tuple[str | None, bool, str]:
    """``region_and_validity``, and the national significant number it looked at."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code)
    if regions is None:
        return None, False, ""
    nsn = phonenumbers.national_significant_number(number)
    if len(regions) == 1:
        return regions[0], _valid_for_region(number, nsn, regions[0]), nsn
    for region in regions:  # the first region that claims the number, as phonenumbers picks
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        rules = _rules(metadata)
        if rules.leading_digits is not None:
            if rules.leading_digits.match(nsn):
                return region, _valid_for_region(number, nsn, region), nsn
        elif rules.valid(nsn):
            return region, True, nsn
    return None, False, nsn


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


# Between numbers: a comma, or a semicolon that does not start an RFC 3966 ";ext=".
_LIST_SEPARATOR = re.compile(r",|;(?!\s*ext\s*=)", re.IGNORECASE)


def split_numbers(text: str) -> list[str]:
    """Numbers pasted as text: one per line, or separated by commas or semicolons.

    ``+12065550123;ext=77`` stays one number (and is refused for its extension).
    """
    parts = _LIST_SEPARATOR.sub("\n", text).splitlines()
    return [p.strip() for p in parts if p.strip()]


def group_by_country(numbers: Iterable[ParsedNumber]) -> dict[str, list[str]]:
    """E.164 numbers grouped by their country, countries sorted."""
    groups: dict[str, list[str]] = defaultdict(list)
    for n in numbers:
        if n.valid and n.e164 and n.country:
            groups[n.country].append(n.e164)
    return dict(sorted(groups.items()))
