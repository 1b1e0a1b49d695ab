"""Reading the reviewed tab-separated files (glossary, query lexicons, term lexicons, the
translation memory): one format, one reader.

Each file is UTF-8, '#' lines are comments for reviewers, blank lines are skipped, and the first
other row is the header. Cells are taken as written (no CSV quoting: a quote mark is text). Each
loader checks its own rows; this yields them with their line numbers for its messages. Python's
csv module does the splitting; what it does not do is the comment and header convention.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path


def tsv_rows(path: Path, columns: Sequence[str], error: type[Exception]) -> Iterator[tuple[int, list[str]]]:
    """The rows after the header, as (line number, cells); `error` when the header is not
    `columns` (compared without case or surrounding spaces)."""
    rows = csv.reader(path.read_text(encoding="utf-8").splitlines(), delimiter="\t",
                      quoting=csv.QUOTE_NONE)
    header_seen = False
    for number, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip() or row[0].startswith("#"):
            continue
        if not header_seen:
            if [cell.strip().lower() for cell in row] != [c.lower() for c in columns]:
                raise error(f"{path.name} line {number}: the first row must be the header "
                            f"'{'<TAB>'.join(columns)}'.")
            header_seen = True
            continue
        yield number, row
