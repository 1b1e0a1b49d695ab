"""The input guard on what people (and broken clients) actually send."""
from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from bot.safety.input_guard import (
    check_message, clean_text, detect_language, encodable, has_surrogates,
    plain_text_for_retrieval,
)

LIMIT = 6000


@pytest.mark.parametrize("message", ["", "   ", "\n\t \r\n", "\u200b\u200b", "\u00a0\u3000"])
def test_empty_or_invisible_message_is_empty(message):
    result = check_message(message, LIMIT)
    assert (result.ok, result.problem, result.cleaned, result.length) == (False, "empty", "", 0)


def test_none_counts_as_empty():
    assert check_message(None, LIMIT).problem == "empty"


def test_ordinary_question_passes_cleaned():
    result = check_message("  Why do my calves\tcramp\n\nat night?  ", LIMIT)
    assert result.ok and result.problem is None
    assert result.cleaned == "Why do my calves cramp at night?"
    assert result.length == len(result.cleaned)


def test_ten_thousand_characters_are_too_long_and_the_length_is_reported():
    message = "Why do I get leg cramps? " * 400  # 10,000 characters
    result = check_message(message, LIMIT)
    assert len(message) == 10_000
    assert (result.ok, result.problem) == (False, "too_long")
    assert result.length == len(message.strip())


def test_message_at_the_limit_passes():
    message = ("cramp " * 1000).strip()[:LIMIT]
    assert check_message(message, LIMIT).ok


def test_whitespace_padding_does_not_count_against_the_limit():
    assert check_message("cramps?" + " " * 10_000, LIMIT).ok


def test_a_pasted_megabyte_is_refused_quickly():
    started = time.perf_counter()
    result = check_message("x" * 1_000_000, LIMIT)
    assert result.problem == "too_long" and result.length == 1_000_000
    assert time.perf_counter() - started < 0.1


def test_only_control_characters_are_not_text():
    assert check_message("\x07\x1b\x08", LIMIT).problem == "not_text"


def test_nul_byte_means_not_text():
    result = check_message("leg\x00cramps", LIMIT)
    assert (result.ok, result.problem, result.cleaned) == (False, "not_text", "")


def test_binary_file_pasted_as_text_is_not_text():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256))
    assert check_message(png.decode("latin-1"), LIMIT).problem == "not_text"
    assert check_message(png, LIMIT).problem == "not_text"  # raw bytes from a client


def test_random_bytes_decoded_badly_are_not_text():
    noise = bytes(random.Random(7).randrange(128, 256) for _ in range(400))
    garbled = noise.decode("utf-8", errors="replace")
    assert "\x00" not in garbled
    assert check_message(garbled, LIMIT).problem == "not_text"


def test_one_replacement_character_in_a_real_question_is_tolerated():
    result = check_message("Why do my calves cramp at night \ufffd?", LIMIT)
    assert result.ok and result.cleaned == "Why do my calves cramp at night ?"


def test_control_characters_and_terminal_colours_are_removed():
    result = check_message("why do my \x07calves \x1b[31mcramp\x1b[0m\x08 at\x0bnight?", LIMIT)
    assert result.ok and result.cleaned == "why do my calves cramp at night?"


def test_zero_width_and_bidi_characters_are_removed():
    message = "\ufeffcr\u200bamp at n\u200dight \u202eand\u202c in the m\u2060orning\u200e"
    assert check_message(message, LIMIT).cleaned == "cramp at night and in the morning"


def test_compatibility_forms_are_folded():
    assert clean_text("ｌｅｇ ｃｒａｍｐ ﬁx") == "leg cramp fix"


def test_html_is_kept_for_the_ui_to_escape():
    message = "<b>cramps</b> at night <script>alert('x')</script>"
    result = check_message(message, LIMIT)
    assert result.ok and result.cleaned == message


def test_plain_text_drops_tags_scripts_and_styles():
    message = (
        "<style>p {color: red}</style><p>Why do my <b>calves</b> cramp?</p>"
        "<script>document.cookie</script><p>Tom &amp; Jerry &lt;3</p><!-- hidden -->"
    )
    assert plain_text_for_retrieval(message) == "Why do my calves cramp? Tom & Jerry <3"


def test_plain_text_keeps_inline_words_whole_and_blocks_apart():
    assert plain_text_for_retrieval("<b>cr</b>amp<br>night<div>legs</div>") == "cramp night legs"


@pytest.mark.parametrize(
    "message", ["cramps < 3 times a week", "if x<y then", "3<5 and 5>3", "a <b"]
)
def test_plain_text_leaves_text_that_only_looks_like_markup(message):
    assert plain_text_for_retrieval(message) == message


def test_unclosed_script_hides_its_content():
    assert plain_text_for_retrieval("cramps <script>alert(1)") == "cramps"


def test_russian_message_passes_unchanged():
    message = "Почему ночью сводит икры? Что делать с судорогами в ногах?"
    result = check_message(message, LIMIT)
    assert result.ok and result.cleaned == message


def test_emoji_survive_including_joined_sequences():
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    praying = "\U0001F64F\U0001F3FD"  # with a skin-tone modifier
    message = f"my calf cramps every night \U0001F62B\U0001F62B {family} help {praying}"
    result = check_message(message, LIMIT)
    assert result.ok and result.cleaned == message


def test_emoji_only_message_is_allowed_through():
    assert check_message("\U0001F62B\U0001F9B5", LIMIT).ok


@pytest.mark.parametrize(
    "text, language",
    [
        ("Why do my calves cramp at night?", "en"),
        ("Почему ночью сводит икры?", "ru"),
        ("Судороги after running, что делать?", "ru"),
        ("Is magnesium good для судорог in my calves when I run?", "en"),
        ("Що робити, якщо ікри зводить вночі?", "other"),
        ("为什么我晚上小腿抽筋?", "other"),
        ("12345 !!! \U0001F62B", "other"),
        ("", "other"),
        ("Pourquoi ai-je des crampes?", "en"),
    ],
)
def test_detect_language_by_script(text, language):
    assert detect_language(text) == language


# -- any Unicode, including lone surrogates (Hypothesis) ------------------------------------------

# st.text() leaves out surrogates; code points drawn from the whole range keep them in.
any_code_points = st.lists(st.integers(0, 0x10FFFF).map(chr), max_size=80).map("".join)
any_text = st.one_of(st.text(max_size=80), any_code_points)


@hypothesis_settings(max_examples=300, deadline=None)
@given(any_text)
def test_encodable_text_always_encodes_and_valid_text_is_unchanged(text):
    repaired = encodable(text)
    repaired.encode("utf-8")  # strict
    assert len(repaired) == len(text)
    assert encodable(repaired) == repaired
    assert not has_surrogates(repaired)
    if not has_surrogates(text):
        assert repaired == text


@hypothesis_settings(max_examples=300, deadline=None)
@given(any_text)
def test_the_guard_never_raises_and_what_it_keeps_encodes(text):
    result = check_message(text, max_chars=200)
    result.cleaned.encode("utf-8")
    assert result.ok == (result.problem is None)
    assert result.ok or result.problem in ("empty", "too_long", "not_text")
