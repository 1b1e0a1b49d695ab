"""Citation markers and sentence splitting, on the kinds of answers small models write."""
from __future__ import annotations

import pytest

from bot.citations import (
    cited_numbers,
    join_sentences,
    normalize_sentence,
    renumber,
    split_answer,
    split_sentences,
    strip_markers,
)


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("Cramps are common [1].", [1]),
        ("Cramps are common [1, 2].", [1, 2]),
        ("Cramps are common [1][2].", [1, 2]),
        ("Cramps are common [2] [1].", [2, 1]),
        ("Cramps are common [Source 1].", [1]),
        ("Cramps are common [Sources 1 and 3].", [1, 3]),
        ("Cramps are common [source 1; source 2].", [1, 2]),
        ("Cramps are common (1).", [1]),
        ("Cramps are common (Source 2).", [2]),
        ("Cramps are common [1-3].", [1, 2, 3]),
        ("Cramps are common [^2].", [2]),
        ("Cramps are common 【1】.", [1]),
        ("Cramps are common.[1]", [1]),
        ("Vitamins B1, B5 and B6 matter (see above).", []),
        ("Take 5 cups (or fewer) a day.", []),
        ("Try (1) stretching, (2) drinking water.", []),
        ("Try: (1) stretching.", []),
    ],
)
def test_marker_styles(text, numbers):
    assert cited_numbers(text) == numbers


@pytest.mark.parametrize(
    "sentence, n_shown, expected",
    [
        ("Cramps are common [1].", 3, "Cramps are common [1]."),
        ("Cramps are common. [1]", 3, "Cramps are common [1]."),
        ("Cramps are common.[2][1]", 3, "Cramps are common [2][1]."),
        ("Cramps are common [1, 7].", 3, "Cramps are common [1]."),  # 7 was never shown
        ("Cramps are common [0].", 3, "Cramps are common."),
        ("Cramps (Source 2) are common.", 3, "Cramps are common [2]."),
        ("According to source [2], cold water narrows the vessels.", 3,
         "Cold water narrows the vessels [2]."),
        ("Source 3 says that coffee can cause cramps.", 3, "Coffee can cause cramps [3]."),
        ("low magnesium [1][1]", 3, "Low magnesium [1]"),
        ("Is it serious [1]?", 3, "Is it serious [1]?"),
    ],
)
def test_normalize_sentence(sentence, n_shown, expected):
    assert normalize_sentence(sentence, n_shown) == expected


def test_strip_markers_tidies_what_is_left():
    assert strip_markers("Stress [1], coffee [2] and shoes [3] matter [1-3] .") == (
        "Stress, coffee and shoes matter."
    )


@pytest.mark.parametrize(
    "text, sentences",
    [
        (
            "Cramps are common [1]. Stretching helps, e.g. pulling the toes up [2]. I hope this helps!",
            ["Cramps are common [1].", "Stretching helps, e.g. pulling the toes up [2].",
             "I hope this helps!"],
        ),
        (
            "Drink about 1.5 litres of water. [3] Avoid more than 5 cups of coffee.[1] Then rest.",
            ["Drink about 1.5 litres of water. [3]", "Avoid more than 5 cups of coffee.[1]",
             "Then rest."],
        ),
        (
            "Dr. Smith lists vitamins (B1, B5 and B6) [1]. Approx. 5 cups, i.e. a lot, etc. Rest.",
            ["Dr. Smith lists vitamins (B1, B5 and B6) [1].", "Approx. 5 cups, i.e. a lot, etc.",
             "Rest."],
        ),
        (
            "Is it serious? Sometimes [2]! Usually not.",
            ["Is it serious?", "Sometimes [2]!", "Usually not."],
        ),
        (
            "A line wrapped\nin the middle [1]. Next.\n\nNew paragraph [2].",
            ["A line wrapped in the middle [1].", "Next.", "New paragraph [2]."],
        ),
    ],
)
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_lists_and_bullets_become_items():
    answer = (
        "Common causes include:\n- dehydration [1]\n* low magnesium [2]\n"
        "1. Stretch the calf. Hold it [3].\n2) Drink water [1]."
    )
    parts = split_answer(answer)
    assert [(p.text, p.bullet) for p in parts] == [
        ("Common causes include:", ""),
        ("dehydration [1]", "-"),
        ("low magnesium [2]", "-"),
        ("Stretch the calf.", "1."),
        ("Hold it [3].", ""),
        ("Drink water [1].", "1."),
    ]
    assert join_sentences(parts) == (
        "Common causes include:\n- dehydration [1]\n- low magnesium [2]\n"
        "1. Stretch the calf. Hold it [3].\n2. Drink water [1]."
    )


def test_inline_enumerations_are_split_into_items():
    parts = split_answer("Try these: 1. Stretch the calf [1]. 2. Drink water [2].")
    assert [(p.text, p.bullet) for p in parts] == [
        ("Try these:", ""), ("Stretch the calf [1].", "1."), ("Drink water [2].", "1."),
    ]


def test_join_keeps_paragraphs():
    parts = split_answer("First [1]. Second [2].\n\nThird [3].")
    assert join_sentences(parts) == "First [1]. Second [2].\n\nThird [3]."


def test_renumber_in_order_of_first_appearance():
    renumbered = renumber("Coffee [3]. Shoes [1][3]. Stress [2] [1]. Heat [3][3].")
    assert renumbered.text == "Coffee [1]. Shoes [1][2]. Stress [2][3]. Heat [1]."
    assert renumbered.order == [3, 1, 2]


def test_renumber_without_markers_is_identity():
    assert renumber("No citations here.") == ("No citations here.", [])


def test_a_marker_goes_after_a_closing_quote_not_inside_it():
    from bot.citations import with_markers
    quoted = with_markers('It leads to the question "why the calf muscle cramps."', [2])
    assert quoted == 'It leads to the question "why the calf muscle cramps." [2]'
    assert split_sentences(f"{quoted} {with_markers('This is vitamin B6.', [2])}") == [
        quoted, "This is vitamin B6 [2]."]
    assert with_markers("Plain sentence.", [1]) == "Plain sentence [1]."
    assert with_markers("No punctuation", [1]) == "No punctuation [1]"
