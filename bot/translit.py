"""Russian typed in Latin letters ("pochemu svodit ikry po nocham?") read as the Russian it is.

Russian speakers without a Cyrillic keyboard write Russian in Latin letters, each in their own
way: "ы" as "y", "й" as "y" or "j", "ц" as "ts" or "c", "ь" as "'" or not at all. cyrtranslit
(maintained, GOST 7.79 with informal extras) converts one spelling per letter; which spelling a
word used is then decided the way a reader does, by which reading is a Russian word: every
reading of the ambiguous letters is converted, and of those pymorphy3's dictionary knows, the
one wordfreq finds most frequent wins, less so the more unusual readings it took ("myshcu" is
"мышцу", not the more frequent "мишку"). Only the spelling variants are written here: no library
lists the informal ones.

A message is taken for Russian only when its longer words are not English and most of its words
read as known Russian words, so an English question with a drug's name stays English.
"""
from __future__ import annotations

import functools
import itertools
import re

import cyrtranslit
from wordfreq import zipf_frequency

from bot.russian_morphology import analyzer

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*'?")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
# Fixed spellings first, into cyrtranslit's: "shch"/"sch" -> "shh" (щ), "kh" -> "h" (х),
# "ju"/"ja"/"jo"/"je" -> "yu"/"ya"/"yo"/"ye" (cyrtranslit reads "ja" as "жа").
_FIXED = [("shch", "shh"), ("sch", "shh"), ("kh", "h"), ("ju", "yu"), ("ja", "ya"),
          ("jo", "yo"), ("je", "ye")]
# Letters with several readings, the most usual first: a "y" that starts no "ya/yu/yo/ye" is ы,
# й or и; "ts" is ц or тс; a lone "c" is ц or к; a word's first "e" is е or э; a word's last
# consonant may have lost its soft sign ("delat", "noch").
_Y = re.compile(r"y(?![auoe])")
_TS = re.compile(r"ts")
_C = re.compile(r"c(?![hkz])")
_LAST_CONSONANT = re.compile(r"(?<=[aeiouy])(?:ch|sh|[tlnsdzmrv])$")
# ...or one inside the word, before another consonant ("skolko" is "сколько", "bolno" "больно").
_INNER_CONSONANT = re.compile(r"(?<=[aeiouy])[lntdzmr](?=[bcdfgkmnpqstvz])")
_MAX_READINGS = 64
_UNUSUAL_COST = 0.5  # Zipf points a reading loses per letter read the less usual way
_LONG = 4  # letters from which a word is judged as English or not
_MAX_ENGLISH_SHARE = 0.34
_MIN_RUSSIAN_SHARE = 0.6
_MIN_RUSSIAN_WORDS = 2


def cyrillic_reading(text: str) -> str | None:
    """`text` in Cyrillic when it is Russian written in Latin letters, else None."""
    if _CYRILLIC.search(text):
        return None
    words = _WORD.findall(text)
    long = [w for w in words if len(w.replace("'", "")) >= _LONG]
    if len(words) < 2 or not long:
        return None
    english = sum(zipf_frequency(w.lower(), "en") >= 3.0 for w in long)
    if english > _MAX_ENGLISH_SHARE * len(long):
        return None
    readings = {w: _reading(w.lower()) for w in set(words)}
    known = [w for w in words if analyzer().word_is_known(readings[w])]
    if (len(known) < _MIN_RUSSIAN_SHARE * len(words)
            or sum(len(w) >= _LONG for w in known) < _MIN_RUSSIAN_WORDS):
        return None
    return _WORD.sub(lambda m: readings[m.group(0)], text)


@functools.lru_cache(maxsize=4096)
def _reading(word: str) -> str:
    """The Cyrillic reading of one lower-case Latin word that is the likeliest Russian word."""
    for latin, fixed in _FIXED:
        word = word.replace(latin, fixed)
    candidates = [(_convert(spelling), unusual) for spelling, unusual in _spellings(word)]
    known = [(c, unusual) for c, unusual in candidates if analyzer().word_is_known(c)]
    if not known:
        return candidates[0][0]
    return max(known, key=lambda k: zipf_frequency(k[0], "ru") - _UNUSUAL_COST * k[1])[0]


def _convert(spelling: str) -> str:
    cyrillic = cyrtranslit.to_cyrillic(spelling, "ru")
    return cyrillic[:-1] + "ь" if cyrillic.endswith("'") else cyrillic


def _spellings(word: str) -> list[tuple[str, int]]:
    """Every reading of the word's ambiguous letters, in cyrtranslit's spelling, with how many
    of its letters took a reading other than the most usual one."""
    slots: list[tuple[int, int, list[str]]] = []
    for pattern, options in ((_Y, ["y'", "j", "y"]), (_TS, ["cz", "ts"]), (_C, ["cz", "c"])):
        slots += [(m.start(), m.end(), options) for m in pattern.finditer(word)]
    if word.startswith("e"):
        slots.append((0, 1, ["e", "e'"]))
    taken = {i for start, end, _ in slots for i in range(start, end)}
    slots += [(m.start(), m.end(), [m.group(0), m.group(0) + "'"])
              for m in _INNER_CONSONANT.finditer(word) if m.start() not in taken]
    last = _LAST_CONSONANT.search(word)
    if last:
        slots.append((last.start(), last.end(), [last.group(0), last.group(0) + "'"]))
    slots.sort()
    spellings = []
    for choice in itertools.islice(itertools.product(*(options for _, _, options in slots)),
                                   _MAX_READINGS):
        parts, at = [], 0
        for (start, end, _), option in zip(slots, choice):
            parts += [word[at:start], option]
            at = end
        unusual = sum(option != options[0] for (_, _, options), option in zip(slots, choice))
        spellings.append(("".join(parts) + word[at:], unusual))
    return spellings
