"""Reading the harness's CSV tables tolerantly: a torn last line (a process killed mid-write), a
garbage line, NUL bytes (a crash on some filesystems), a row with more or fewer fields than the
header (the first data row included: two rows glued by a lost newline) or a row with unusable
values is dropped and counted, never a crash and never a shifted column; the rows kept have
the types a clean file would give."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


class UnusableTable(ValueError):
    """A table that has no usable header (the message says why)."""


@dataclass
class Table:
    """The usable rows of a CSV file and how many lines were dropped."""

    frame: pd.DataFrame
    dropped: int = 0

    def note(self, path: Path) -> str | None:
        """A one-line note about the dropped lines, or None."""
        if not self.dropped:
            return None
        lines = "line" if self.dropped == 1 else "lines"
        return f"{path}: {self.dropped} unreadable {lines} skipped"


def read_table(
    path: str | Path,
    required: Sequence[str],
    usable: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> Table:
    """The rows of ``path`` whose ``required`` columns exist and that ``usable`` accepts.

    ``usable`` receives every column as text (NaN where empty), or, to try a faster path first,
    as parsed with its types; it returns a boolean mask. An
    empty file, or one holding only its header, is an empty table with the required columns.
    Raises UnusableTable when the header lacks a required column, OSError when unreadable."""
    text = Path(path).read_bytes().decode("utf-8", errors="replace").replace("\x00", "")
    dropped = 0
    if text and not text.endswith("\n"):  # every row is written whole with its newline
        text, dropped = text[: text.rfind("\n") + 1], 1
    if not text.strip():
        return Table(_empty(list(required)), dropped)
    try:
        text, bad = _whole_rows(text)
    except csv.Error as exc:  # e.g. a field over csv's size limit: not a table of ours
        raise UnusableTable(f"{Path(path).name} is not a readable CSV table ({exc})") from None
    typed = _typed_if_all_usable(text, required, usable)
    if typed is not None:  # the common case: a clean file, parsed once
        return Table(typed, dropped + bad)
    frame = pd.read_csv(io.StringIO(text), dtype=str, skip_blank_lines=True)
    _check_header(path, frame, required)
    keep = usable(frame) if usable is not None and len(frame) else pd.Series(True, frame.index)
    keep = keep.fillna(False).astype(bool)
    dropped += bad + int((~keep).sum())
    clean = frame[keep]
    if not len(clean):
        return Table(_empty(list(frame.columns)), dropped)
    retyped = pd.read_csv(io.StringIO(clean.to_csv(index=False)), low_memory=False)
    return Table(retyped.reset_index(drop=True), dropped)


def _check_header(path: str | Path, frame: pd.DataFrame, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        listed = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise UnusableTable(
            f"{Path(path).name} has no header with the expected columns (missing {listed})"
        )


def _typed_if_all_usable(text: str, required: Sequence[str], usable) -> pd.DataFrame | None:
    """``text`` parsed with its types when it has the required columns and ``usable`` (which
    also accepts typed columns) keeps every row: the same frame as parsing it as text, filtering
    and parsing again, at a third of the cost. None otherwise: the careful path decides. A
    required column read as booleans also goes the careful way: pandas reads "true" and "TRUE"
    as True, which a check of the text ("True" or "False") would refuse, and numbers checks
    take booleans for 1 and 0."""
    try:
        frame = pd.read_csv(io.StringIO(text), skip_blank_lines=True, low_memory=False)
    except (ValueError, pd.errors.ParserError):
        return None
    if any(c not in frame.columns for c in required) or not len(frame):
        return None
    if any(_has_booleans(frame[c]) for c in required):
        return None
    if usable is not None and not usable(frame).fillna(False).astype(bool).all():
        return None
    return frame


def _has_booleans(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column):
        return True
    return column.dtype == object and bool(column.map(lambda v: isinstance(v, bool)).any())


def _whole_rows(text: str) -> tuple[str, int]:
    """The CSV ``text`` with only its header and the rows that have as many fields as it, and
    how many rows were dropped. pandas alone would take a longer first data row (two rows glued
    by a lost newline, a row with extra fields) as an index and shift every column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header, dropped = None, 0
    for row in csv.reader(io.StringIO(text, newline="")):  # \r\n, \n or a lone \r ends a row
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        if header is None:
            header = row
        elif len(row) != len(header):
            dropped += 1
            continue
        writer.writerow(row)
    return out.getvalue(), dropped


TEXT_COLUMNS = ("strategy", "state", "fail_reason", "device")


def _empty(columns: list[str]) -> pd.DataFrame:
    """No rows: numbers where a clean file would have numbers, so sums and means are 0 or NaN."""
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c in TEXT_COLUMNS else float) for c in columns}
    )


def number(column: pd.Series) -> pd.Series:
    """The column as floats, NaN where a cell is not a number."""
    return pd.to_numeric(column, errors="coerce")


def whole(column: pd.Series, minimum: int = 0) -> pd.Series:
    """Cells that are whole numbers >= ``minimum``."""
    values = number(column)
    return values.notna() & (values == np.floor(values)) & (values >= minimum)


def finite(column: pd.Series) -> pd.Series:
    """Cells that are finite numbers."""
    return np.isfinite(number(column).astype(float))


def empty_or_number(column: pd.Series) -> pd.Series:
    """Cells that are empty (unknown) or numbers."""
    return column.isna() | number(column).notna()


def has_rows(path: str | Path) -> bool:
    """True if ``path`` is a file with at least one line after its header (an empty side file,
    or one holding only its header, counts as absent)."""
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip()) > 1
    except OSError:
        return False
