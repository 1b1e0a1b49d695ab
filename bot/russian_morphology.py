"""Russian morphology, loaded once for the process: pymorphy3's analyzer with its bundled
dictionary. bot/rare_terms.py asks it a word's part of speech, bot/translit.py whether a reading
of Latin letters is a Russian word."""
from __future__ import annotations

import functools

import pymorphy3


@functools.lru_cache(maxsize=1)
def analyzer() -> pymorphy3.MorphAnalyzer:
    return pymorphy3.MorphAnalyzer(lang="ru")
