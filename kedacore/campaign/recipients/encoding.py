"""Which encoding a CSV is in: a BOM, else UTF-8, else what charset-normalizer proposes, checked.

Excel's "CSV" is written in the Windows code page of the machine that saved it: cp949 on a
Korean Windows, cp932 (Shift-JIS) on a Japanese one, GBK on a simplified Chinese one, Big5 on a
traditional Chinese one, Windows-1252 in the West. Many byte sequences decode without error in
several of them — Korean cp949 reads as "valid" GB18030, giving Chinese characters nobody
wrote — so decoding without error proves little. The order:

1. ``encoding=`` given: that one.
2. A BOM decides (UTF-8, UTF-16, UTF-32).
3. UTF-8 when the whole file decodes as UTF-8 (checked a megabyte at a time).
4. Otherwise a bounded sample (the start of the file and the lines around its first non-ASCII
   byte, ``SAMPLE`` bytes at most) goes to charset-normalizer, whose candidates — and the code
   pages Excel writes, in case it missed one — are each decoded and checked for plausible
   text (:func:`implausible`): every header name and cell in one script (Hangul, Han, kana with
   Han, Latin, Cyrillic…), no control or private-use characters, no symbols inside words, no
   word made mostly of accented letters (the sign of another code page read as Latin). The
   candidate with the fewest implausible fields wins; among equals the code page Excel most
   often writes (``PREFERRED``: Windows-1252 first, since Latin text reads plausibly in every
   Latin code page; then Korean before Japanese before Chinese, since a short Korean or
   Japanese text also reads as plausible Han characters in the Chinese ones), then
   charset-normalizer's order (Cyrillic or Greek, say, by its language statistics).

:func:`detect_encoding` returns the codec's Python name (``cp949``, ``gb18030``…);
``ENCODINGS`` is what the console offers to choose from, with a label for people.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from kedacore.campaign.recipients.limits import MB, RecipientsError

_CHUNK = MB  # bytes decoded at a time while checking UTF-8
SAMPLE = 64 * 1024  # bytes of the file given to the detection, at most
_HEAD = 4 * 1024  # of which the start of the file (the header), when the rest is further on

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)

# What the console offers (codec → label), Excel's usual code pages first.
ENCODINGS = {
    "utf-8": "Unicode (UTF-8)",
    "utf-8-sig": "Unicode (UTF-8 with BOM)",
    "utf-16": "Unicode (UTF-16)",
    "cp1252": "Western European (Windows-1252)",
    "cp949": "Korean (cp949 / EUC-KR)",
    "cp932": "Japanese (Shift-JIS / cp932)",
    "gb18030": "Chinese, simplified (GB18030 / GBK)",
    "cp950": "Chinese, traditional (Big5 / cp950)",
    "big5hkscs": "Chinese, Hong Kong (Big5-HKSCS)",
    "cp1250": "Central European (Windows-1250)",
    "cp1251": "Cyrillic (Windows-1251)",
    "cp1253": "Greek (Windows-1253)",
    "cp1254": "Turkish (Windows-1254)",
    "cp1255": "Hebrew (Windows-1255)",
    "cp1256": "Arabic (Windows-1256)",
    "cp1257": "Baltic (Windows-1257)",
    "cp1258": "Vietnamese (Windows-1258)",
    "cp874": "Thai (Windows-874)",
    "koi8_r": "Cyrillic (KOI8-R)",
    "iso8859_2": "Central European (ISO-8859-2)",
    "latin_1": "Western European (ISO-8859-1)",
    "mac_roman": "Western European (Mac Roman)",
    "utf-32": "Unicode (UTF-32)",
}
# Among equally plausible readings, these first (and tried even if charset-normalizer left
# them out); the others in charset-normalizer's order.
PREFERRED = ("cp1252", "cp949", "cp932", "gb18030", "cp950")
# A code page read as its superset (what Windows really writes under the same name).
_SUPERSET = {
    "ascii": "cp1252",
    "euc_kr": "cp949",
    "johab": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "hz": "gb18030",
    "shift_jis": "cp932",
    "shift_jis_2004": "cp932",
    "shift_jisx0213": "cp932",
    "euc_jis_2004": "cp932",
    "euc_jp": "cp932",
    "big5": "cp950",
    "iso8859_1": "cp1252",
    "latin_1": "cp1252",
    "iso8859_15": "cp1252",
}


def label(encoding: str) -> str:
    """An encoding as people know it: ``Korean (cp949 / EUC-KR)``; the codec name otherwise."""
    return ENCODINGS.get(codec_name(encoding), encoding)


def codec_name(encoding: str) -> str:
    """Python's own name of a codec (``EUC-KR`` → ``euc_kr``); the name as given if unknown."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return encoding
    return {"iso8859-1": "latin_1", "latin-1": "latin_1"}.get(name, name)


def check_encoding(encoding: str) -> str:
    """``encoding`` if Python can decode it incrementally.

    Raises:
        RecipientsError: an unknown encoding (named).
    """
    try:
        codecs.getincrementaldecoder(encoding)
    except (LookupError, TypeError):
        raise RecipientsError(f"unknown encoding {encoding!r}") from None
    return encoding


def detect_encoding(data: bytes) -> str:
    """The codec of a CSV's bytes (see the module docstring)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    if _decodes(data, "utf-8"):
        return "utf-8"
    sample = _sample(data)
    ranked = _candidates(sample)
    best: tuple[int, int, int, str] | None = None
    for rank, codec in enumerate(ranked):
        text = _decode(sample, codec)
        if text is None:
            continue
        preference = PREFERRED.index(codec) if codec in PREFERRED else len(PREFERRED)
        score = (implausible(text), preference, rank, codec)
        if best is None or score < best:
            best = score
    if best is not None:
        return best[3]
    return "cp1252" if _decodes(data, "cp1252") else "latin_1"


def _decodes(data: bytes, codec: str) -> bool:
    decoder = codecs.getincrementaldecoder(codec)()
    view = memoryview(data)
    try:
        for at in range(0, len(view), _CHUNK):
            decoder.decode(view[at : at + _CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


_NON_ASCII = re.compile(rb"[\x80-\xff]")


def _sample(data: bytes) -> list[bytes]:
    """The bytes the detection looks at: the file's start, and the lines around its first
    non-ASCII byte when that lies further on (a long ASCII list with names at the end). A piece
    cut short ends at its last line break (no code page Excel writes has a byte 0x0A inside a
    character), so that no character is cut."""
    found = _NON_ASCII.search(data)
    if found is None or found.start() < SAMPLE - _HEAD:
        return [_whole_lines(data, 0, SAMPLE)]
    line = data.rfind(b"\n", 0, found.start()) + 1
    return [_whole_lines(data, 0, _HEAD), _whole_lines(data, line, SAMPLE - _HEAD)]


def _whole_lines(data: bytes, start: int, size: int) -> bytes:
    piece = data[start : start + size]
    if start + size < len(data):
        end = piece.rfind(b"\n")
        if end > 0:
            piece = piece[: end + 1]
    return piece


def _decode(pieces: list[bytes], codec: str) -> str | None:
    """The sample as text, or None when it does not decode (a piece without a line break may
    end inside a character: that is not held against it)."""
    out = []
    try:
        for piece in pieces:
            out.append(codecs.getincrementaldecoder(codec)().decode(piece, final=False))
    except (UnicodeDecodeError, LookupError):
        return None
    return "\n".join(out)


def _candidates(pieces: list[bytes]) -> list[str]:
    """charset-normalizer's candidates in its order, as supersets, then Excel's code pages."""
    from charset_normalizer import from_bytes

    found: list[str] = []
    for match in from_bytes(b"\n".join(pieces)):
        found.append(codec_name(match.encoding))
    found.extend(PREFERRED)
    out: list[str] = []
    for codec in found:
        codec = _SUPERSET.get(codec, codec)
        if codec not in out and not codec.startswith(("utf", "ascii")):
            out.append(codec)
    return out


# -- is this text plausible? -------------------------------------------------------------------

_FIELDS = re.compile(r"[^,;\t|\s\"']+")
# Scripts that are written together in one word: Japanese mixes kanji and kana.
_TOGETHER = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA", "FULLWIDTH"}),
    frozenset({"HAN", "FULLWIDTH"}),
    frozenset({"HANGUL", "FULLWIDTH"}),
)
_FORMAT_OK = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}


def implausible(text: str, *, fields: int = 1_000) -> int:
    """How many fields (header names, cells, words) of ``text`` no one would have typed.

    A field is implausible when it holds a control, private-use or unassigned character, a
    replacement character, a Hangul syllable or Han character outside the everyday sets
    (:func:`_rare`), letters of two scripts that are not written together, a symbol
    (¹ £ ± ÷ …) next to a letter, or — in Latin script — mostly accented letters (``Ñåðãåé``:
    Cyrillic read as Windows-1252). Pure ASCII fields are never counted; the first ``fields``
    others are looked at.
    """
    bad = 0
    for field in _FIELDS.finditer(text):
        word = field.group()
        if word.isascii():
            continue
        bad += _odd(word)
        fields -= 1
        if not fields:
            break
    return bad


def _odd(field: str) -> bool:
    scripts: set[str] = set()
    accented = latin = others = symbols = 0
    for ch in field:
        kind = _category(ch)
        if kind[0] == "L":
            script = _script(ch)
            if script == "LATIN":
                latin += 1
                accented += not ch.isascii()
            elif script == "HALFWIDTH" or (script in ("HANGUL", "HAN") and _rare(ch)):
                return True  # half-width katakana, 뜴: another code page's bytes
            scripts.add(script)
            continue
        if kind in ("Cc", "Co", "Cn", "Cs") or ch == "\ufffd":
            return True
        if kind == "Cf" and ch not in _FORMAT_OK:
            return True
        others += not ch.isascii() and kind[0] in "PS"
        if kind in ("So", "Sk", "Sm", "Sc", "No") and not ch.isascii() and ch != "°":
            symbols += 1
    if symbols and scripts:  # ¹ £ ± ÷ ´ among letters
        return True
    if not scripts and others > 1:  # no letter at all: ‚·‚¸ (Shift-JIS read as 1252)
        return True
    scripts.discard("COMMON")
    if len(scripts) > 1 and not any(scripts <= together for together in _TOGETHER):
        return True
    return latin >= 3 and accented * 2 > latin


@lru_cache(maxsize=8192)
def _category(ch: str) -> str:
    return unicodedata.category(ch)


@lru_cache(maxsize=8192)
def _rare(ch: str) -> bool:
    """A Hangul syllable or Han character outside the sets people type every day: KS X 1001
    (EUC-KR's 2,350 syllables and its Hanja), GB 2312, Big5 and Windows' JIS (cp932). Another
    code page's bytes read as cp949 or Big5-HKSCS land there (뜴뱻 for Shift-JIS's 佐藤)."""
    # Two bytes: euc_kr spells the other syllables as 8-byte sequences.
    codecs_ = ("euc_kr",) if _script(ch) == "HANGUL" else ("euc_kr", "gb2312", "cp950", "cp932")
    for codec in codecs_:
        try:
            if len(ch.encode(codec)) == 2:
                return False
        except UnicodeEncodeError:
            continue
    return True


@lru_cache(maxsize=8192)
def _script(ch: str) -> str:
    """The script of a letter, from its Unicode name (HAN for every CJK ideograph)."""
    name = unicodedata.name(ch, "")
    if name.startswith(("CJK ", "IDEOGRAPHIC")):
        return "HAN"
    if name.startswith("HALFWIDTH KATAKANA"):
        return "HALFWIDTH"
    if name.startswith("KATAKANA-HIRAGANA"):
        return "KATAKANA"
    if name.startswith("FULLWIDTH"):
        return "FULLWIDTH"
    if name.startswith(("FEMININE ORDINAL", "MASCULINE ORDINAL")):  # Nº, 1ª
        return "LATIN"
    word = name.split(" ", 1)[0]
    return word or "COMMON"


def offered(detected: str | None) -> list[str]:
    """The encodings to offer, the detected one first (when it is not in the list, added)."""
    names: Iterable[str] = ENCODINGS
    first = [detected] if detected and detected not in ENCODINGS else []
    return [*first, *names]
