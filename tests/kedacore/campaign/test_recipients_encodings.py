"""Encodings of recipients CSVs as Excel writes them around the world, detected and checked.

Each file has realistic names and headers in its language. A reading that decodes without
error is not enough (cp949 Korean decodes as "valid" GB18030, giving Chinese characters nobody
wrote): the names and the header must come back as they were typed.
"""

from __future__ import annotations

import time

import pytest

from kedacore.campaign.recipients import RecipientsError, read_recipients
from kedacore.campaign.recipients.encoding import detect_encoding, implausible, label

KOREAN = (
    "phone,이름,쿠폰코드,지역\n"
    "010-1234-5678,김민준,SPRING10,서울\n"
    "010-2345-6789,이서연,SPRING15,부산\n"
    "010-3456-7890,박지훈,SPRING10,인천\n"
    "010-4567-8901,최수아,SPRING20,대구\n"
    "010-5678-9012,정우진,SPRING10,광주\n"
)
SIMPLIFIED = (
    "phone,姓名,优惠码,城市\n"
    "13800138000,王小明,SPRING10,北京\n"
    "13912345678,李娜,SPRING15,上海\n"
    "13698765432,张伟,SPRING10,广州\n"
    "13511112222,刘洋,SPRING20,深圳\n"
    "13733334444,陈静,SPRING10,杭州\n"
)
TRADITIONAL = (
    "phone,姓名,優惠碼,城市\n"
    "0912345678,陳志明,SPRING10,台北\n"
    "0923456789,林美玲,SPRING15,高雄\n"
    "0934567890,黃淑芬,SPRING10,台中\n"
    "0945678901,張家豪,SPRING20,新竹\n"
)
JAPANESE = (
    "phone,氏名,フリガナ,店舗\n"
    "090-1234-5678,佐藤太郎,サトウタロウ,東京本店\n"
    "080-2345-6789,鈴木花子,スズキハナコ,大阪支店\n"
    "070-3456-7890,高橋一郎,タカハシイチロウ,名古屋店\n"
    "090-4567-8901,田中美咲,タナカミサキ,福岡店\n"
)
WESTERN = (
    "phone,prénom,nom,ville\n"
    "+33612345678,Hélène,Dupré,Besançon\n"
    "+4915112345678,Jürgen,Müller,München\n"
    "+34612345678,José,Muñoz,Málaga\n"
    "+4520123456,Søren,Kierkegaard,Århus\n"
    "+33623456789,Zoë,Lefèvre,Orléans\n"
)
MIXED = (
    "phone,name,city\n"
    "+821012345678,김민준,서울\n"
    "+819012345678,佐藤太郎,東京\n"
    "+8613800138000,王小明,北京\n"
    "+33612345678,Hélène,Besançon\n"
    "+79161234567,Сергей,Москва\n"
)


def _cells(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.strip().splitlines()]


@pytest.mark.parametrize(
    ("text", "written", "expected"),
    [
        (MIXED, "utf-8", "utf-8"),
        (MIXED, "utf-8-sig", "utf-8-sig"),
        (MIXED.replace(",", "\t"), "utf-16", "utf-16"),  # Excel's "Unicode text"
        (MIXED, "utf-16-le", "utf-16"),  # with the BOM written by hand below
        (KOREAN, "cp949", "cp949"),  # Excel on a Korean Windows
        (KOREAN, "euc-kr", "cp949"),  # cp949 is EUC-KR and more
        (SIMPLIFIED, "gbk", "gb18030"),  # Excel on a simplified Chinese Windows
        (SIMPLIFIED + "13800000000,王𠮷,SPRING10,南京\n", "gb18030", "gb18030"),
        (TRADITIONAL, "big5", "cp950"),  # Excel on a traditional Chinese Windows
        (TRADITIONAL, "cp950", "cp950"),
        (JAPANESE, "shift_jis", "cp932"),  # Excel on a Japanese Windows
        (JAPANESE.replace("高橋", "髙橋"), "cp932", "cp932"),  # 髙: cp932 only
        (WESTERN, "cp1252", "cp1252"),  # Excel in the West
    ],
)
def test_each_language_reads_back_as_typed(text: str, written: str, expected: str) -> None:
    data = text.encode(written)
    if written == "utf-16-le":
        data = b"\xff\xfe" + data
    table = read_recipients(data, filename="list.csv")
    assert table.encoding == expected, label(table.encoding)
    rows = _cells(text.replace("\t", ","))
    assert list(table.columns) == rows[0]
    assert [list(cells) for _, cells in table.rows] == rows[1:]


def test_korean_is_not_read_as_chinese() -> None:
    """The finding: a cp949 file was read as "gb18030 text" (이름 became 捞抚, 김민준 辫刮霖)."""
    table = read_recipients(KOREAN.encode("cp949"))
    assert table.encoding == "cp949"
    assert "이름" in table.columns and "捞抚" not in table.columns
    assert table.rows[0][1][1] == "김민준"


def test_the_detection_looks_past_a_long_ascii_start() -> None:
    """Names that start after the sample's first part are still in the sample."""
    head = "phone,이름\n" + "".join(f"0101234{i:04d},Kim\n" for i in range(8_000))
    data = (head + "01099998888,김민준\n").encode("cp949")
    assert len(data) > 100_000
    table = read_recipients(data)
    assert table.encoding == "cp949"
    assert table.rows[-1][1] == ("01099998888", "김민준")


def test_the_detection_is_bounded() -> None:
    """Detection reads a bounded sample: a 20 MB Korean file is detected as fast as a small one."""
    row = "010-1234-5678,김민준,SPRING10,서울\n".encode("cp949")
    data = "phone,이름,쿠폰코드,지역\n".encode("cp949") + row * 600_000
    started = time.process_time()
    assert detect_encoding(data) == "cp949"
    assert time.process_time() - started < 2.0


def test_a_chosen_encoding_is_used_and_a_wrong_one_says_what_to_do() -> None:
    data = KOREAN.encode("cp949")
    assert read_recipients(data, encoding="gb18030").columns[1] == "捞抚"  # as asked
    with pytest.raises(RecipientsError, match="choose its encoding"):
        read_recipients(data, encoding="cp932")
    with pytest.raises(RecipientsError, match="unknown encoding"):
        read_recipients(data, encoding="klingon")


@pytest.mark.parametrize(
    ("text", "odd"),
    [
        ("김민준 이서연 서울", 0),
        ("佐藤太郎 サトウタロウ 東京本店", 0),
        ("王小明 北京", 0),
        ("Hélène Müller Søren Nº", 0),
        ("Сергей Москва", 0),
        ("辫刮霖", 0),  # Korean read as GB18030 is Han throughout: a tie, PREFERRED decides
        ("癎샙뵀쯤", 1),  # Chinese read as cp949: Hangul and Han in one word
        ("pr閚om", 1),  # French read as GB18030: Latin and Han
        ("Jьrgen", 1),  # German read as cp1251: Latin and Cyrillic
        ("Ñåðãåé", 1),  # Russian read as cp1252: mostly accented letters
        ("±è¹ÎÁØ", 1),  # Korean read as cp1252: symbols among letters
        ("£ucja", 1),  # Polish read as cp1252
        ("﹎\ue6bd", 1),  # Big5 read as GB18030: private use
        ("ﾀﾌｸｧ", 1),  # Korean read as Shift-JIS: half-width katakana
    ],
)
def test_what_counts_as_implausible(text: str, odd: int) -> None:
    assert implausible(text) == odd
