"""Reading an uploaded CSV file: its encoding, its header and its CSV syntax while the person waits, then
its rows one at a time for the check."""

import codecs
import csv
import difflib
import io
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from services.account_rules import FIELDS
from services.errors import Invalid

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
# What a spreadsheet runs as a formula (OWASP CSV injection): the import refuses such cells (they are
# stripped first, so tab and CR never start one), the export and the error report prefix them with an
# apostrophe, which the import takes off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Where a leading + is a phone number's, not a formula's.
NUMBER_COLUMNS = frozenset(field.column for field in FIELDS if field.unique == "number")
# The documented header (docs/csv-import.md): a column per account field.
COLUMNS = FIELDS
COLUMN_NAMES = tuple(field.column for field in COLUMNS)


def read_csv(data: bytes) -> tuple[str, str, list[str], int]:
    """Decode an upload and check its header and its CSV syntax; return its text, delimiter, columns and
    number of rows. The rows themselves are read again, one at a time, by the check (`rows`)."""
    text = _decode(data)
    first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    delimiter = max(",;\t", key=first.count)  # Excel writes ; where the decimal mark is a comma
    columns = _header(first, delimiter)
    count = 0
    for _ in rows(text, delimiter):
        count += 1
        if count > MAX_ROWS:
            raise Invalid(f"The file has more than {MAX_ROWS:,} rows: split it into smaller files.",
                          field="file")
    if not count:
        raise Invalid("The file has a header but no rows.", field="file")
    return text, delimiter, columns, count


def rows(text: str, delimiter: str) -> Iterator[list[Any]]:
    """Yield each row after the header, its spreadsheet row number first (the header is row 1)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    number = 1
    try:
        next(reader)
        for number, cells in enumerate(reader, start=2):
            # Blank lines, and spreadsheets' empty last rows, are skipped.
            if any(cell.strip() for cell in cells):
                yield [number, *cells]
    except csv.Error as exc:
        raise Invalid(f"Row {number + 1} is not valid CSV ({exc}); nothing was read.", field="file") from None


def short(text: str, limit: int = 40) -> str:
    """A cell as a message quotes it: at most `limit` characters."""
    return text if len(text) <= limit else text[:limit] + "…"


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise Invalid(f"The file is larger than {MAX_BYTES // 2 ** 20} MB: split it into smaller files.",
                      field="file")
    if data.startswith(b"PK\x03\x04"):
        raise Invalid("This is an Excel workbook, not a CSV file: "
                      "in Excel choose Save As › “CSV UTF-8”.",
                      field="file")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise Invalid("The file is UTF-16 text: save it as “CSV UTF-8”.", field="file")
    try:
        text = data.decode("utf-8-sig")  # the byte-order mark Excel writes is dropped
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise Invalid(f"The file is not UTF-8 text (line {line} holds the byte 0x{data[exc.start]:02X}): "
                      "save it as “CSV UTF-8”.", field="file") from None
    if "\x00" in text:
        raise Invalid("The file holds binary data, not CSV text.", field="file")
    if not text.strip():
        raise Invalid("The file is empty.", field="file")
    return text


def _header(line: str, delimiter: str) -> list[str]:
    example = ",".join(COLUMN_NAMES[:5])
    expected = f"The first line must name the columns, e.g. {example} (see the sample file)."
    if len(line) > 2_000:
        raise Invalid(f"The first line is not a header. {expected}", field="file")
    names = [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter))]
    for position, name in enumerate(names, 1):
        if not name:
            raise Invalid(f"Column {position} of the header has no name: name it or remove it.", field="file")
        if name not in COLUMN_NAMES:
            close = difflib.get_close_matches(name, COLUMN_NAMES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise Invalid(f"Unknown column “{short(name)}”{hint}. {expected}", field="file")
    if duplicate := next((name for name, n in Counter(names).items() if n > 1), None):
        raise Invalid(f"The header names the column {duplicate} twice.", field="file")
    if "callerid" not in names:
        raise Invalid(f"The header has no callerid column: every account needs a virtual number. {expected}",
                      field="file")
    return names
