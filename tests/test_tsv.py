"""The reviewed tab-separated files' reader (corpus/tsv.py)."""
from __future__ import annotations

import pytest

from corpus.tsv import tsv_rows


def test_comments_and_blank_lines_are_skipped_and_rows_keep_their_line_numbers(tmp_path):
    path = tmp_path / "lexicon.tsv"
    path.write_text('# for reviewers\n\nPhrase\tReplacement\n# a section\nsay "this"\tthat\n\t\n',
                    encoding="utf-8")
    assert list(tsv_rows(path, ["phrase", "replacement"], ValueError)) == [(5, ['say "this"', "that"])]


def test_a_file_without_its_header_is_refused_with_the_line(tmp_path):
    path = tmp_path / "lexicon.tsv"
    path.write_text("# note\nphrase\tnote\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lexicon.tsv line 2: the first row must be the header "
                                       r"'phrase<TAB>replacement'"):
        list(tsv_rows(path, ["phrase", "replacement"], ValueError))
