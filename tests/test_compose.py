"""Composed answers: units from real passages, their selection for a question, the answer text."""
from __future__ import annotations

import re

import numpy as np

from bot.compose import Evidence, compose_answer, display_sentences, passage_units, select_evidence
from bot.render import highlight_sentence
from corpus.passage import Passage


def passage(text: str, section: str = "Causes of night pain in the calves", pid: str = "t#1",
            start: int = 0) -> Passage:
    return Passage(id=pid, source="t.txt", title="Test", section=section, text=text,
                   raw_start=start, raw_end=start + len(text), original=text)


CAUSES = passage(
    "Prolonged stress, irregular meals. Both lead to a decrease in blood sugar. "
    "Caffeine abuse. When you drink more than 5 cups of strong tea or coffee a day, your calf "
    "muscles may cramp. Wearing uncomfortable shoes. In the daytime the leg muscles get really "
    "tired and at night can't relax.")
SWIM = passage(
    'Well, another question interests swimmers: "Why do swimmers so often get these cramps?" '
    "This is due to narrowing of the blood vessels. It can be caused by too cold water or a "
    "temperature difference.", section="One more reason", pid="t#2")
ADVICE = passage(
    "This in turn will eliminate the pain. Massage has a positive effect on spasms. After the "
    "massage, a cold compress on the skin is useful.", section="What to do about calf cramps",
    pid="t#3")


def test_fragments_join_the_sentence_they_head_and_pronouns_join_the_one_before():
    units = passage_units(CAUSES)
    assert units[0] == "Prolonged stress, irregular meals. Both lead to a decrease in blood sugar."
    assert units[1].startswith("Caffeine abuse. When you drink more than 5 cups")
    # Shown as one sentence each, so one marker covers the heading; the unit keeps the passage's
    # wording for the source card's highlight.
    assert display_sentences(units[1])[0].startswith("Caffeine abuse: when you drink")
    assert len(units) == 3


def test_a_question_the_source_asks_itself_is_shown_with_its_answer_and_says_what_this_is():
    unit, = passage_units(SWIM)[:1]
    # The unit keeps the passage's wording, for the source card's highlight ...
    assert unit.startswith('Well, another question interests swimmers: "Why do swimmers')
    # ... and the answer shows the question alone, so "This is due to..." says what "this" is
    # (it had opened swimming answers with a "this" the reader never saw).
    assert display_sentences(unit)[:2] == ["Why do swimmers so often get these cramps?",
                                           "This is due to narrowing of the blood vessels."]


def test_a_sentence_naming_the_last_ones_noun_with_the_reads_with_it():
    bath = passage("Alternatively, try baths with warm water. Lightly stroke the legs under the "
                   "water. The water will relax the muscles and relieve spasm. The calves "
                   "are among the most common places of such sensations.", pid="t#5")
    units = passage_units(bath)
    assert "Lightly stroke the legs under the water. The water will relax" in " | ".join(units)
    assert not any(unit.startswith("The water") for unit in units)
    assert any(unit.startswith("The calves") for unit in units)  # "calves" was not named before


def test_a_chunk_starting_with_a_pronoun_drops_the_sentence_it_cannot_explain():
    units = passage_units(ADVICE)
    assert not any(u.startswith("This in turn") for u in units)


def test_a_chunk_starting_with_a_consequence_keeps_its_fact_without_the_connective():
    mechanism = passage("As a result, the swollen muscle fibers squeeze the vessels, and blood "
                        "does not flow through them. In the area of the spasm, oxygen starvation "
                        "occurs.", pid="t#6")
    units = passage_units(mechanism)
    assert units[0].startswith("The swollen muscle fibers squeeze the vessels")
    assert highlight_sentence(mechanism.text, units[0]).startswith("As a result, <mark>")


def test_selection_answers_the_question_asked(embedder):
    shown = [CAUSES, SWIM, ADVICE]
    swim = select_evidence("Why do I get cramps when swimming?", shown, embedder)
    assert swim and swim[0].number == 2 and "narrowing" in swim[0].text
    coffee = select_evidence("Can coffee cause calf cramps?", shown, embedder)
    assert "5 cups" in coffee[0].text
    helps = select_evidence("What helps when my calf cramps?", shown, embedder)
    assert any("Massage" in unit.text for unit in helps)


def test_nothing_relevant_selects_nothing(embedder):
    assert select_evidence("What is the capital of Australia?", [CAUSES], embedder, floor=0.3) == []


def test_composed_answer_cites_every_unit_and_renumbers_in_order():
    shown = [CAUSES, SWIM]
    evidence = [Evidence(2, "This is due to narrowing of the blood vessels.", 0.9),
                Evidence(1, "Caffeine abuse. Five cups may cramp the calves.", 0.8)]
    grounded = compose_answer(evidence, shown, lead="Cold water narrows the vessels.", lead_units=[1])
    # every sentence cited; the heading fragment is shown joined to the sentence it heads
    assert re.findall(r"\[(\d)\]", grounded.text) == ["1", "1", "2"]
    assert "Caffeine abuse: five cups may cramp the calves [2]." in grounded.text
    assert [c.passage.id for c in grounded.citations] == ["t#2", "t#1"]
    assert grounded.citations[0].supporting_sentence == evidence[0].text
    assert not grounded.extractive
    quoted = compose_answer(evidence, shown)
    assert quoted.extractive and quoted.text.startswith("This is due to narrowing")


INTRO = passage(
    "Complaints that the calves cramp at night are not uncommon. This condition is accompanied "
    "by painful sensations, which keep a person from sleeping properly.",
    section="Test", pid="t#0")  # before the source's first heading: filed under its title
WORK = passage(
    "Sitting or standing work. Both can cause night cramps. In the case of sedentary work, "
    "immobility contributes to slowing the blood circulation and flow of nutrients in the "
    "extracellular space of muscles.", section="Sedentary work", pid="t#4", start=1000)


def test_what_every_passage_shares_counts_for_nothing(shared_retriever):
    from bot.compose import _cosines, topic_vector

    embedder = shared_retriever.embedder
    topic = topic_vector(shared_retriever.load().passages, embedder)
    question, cause = embedder.embed(["Why do my calves cramp at night?",
                                      "Sitting or standing work. Both can cause night cramps."])
    # A unit that says only what all the sources say (the mean of their units) matches no
    # question once that is removed; a unit with something of its own still does.
    centred = _cosines(np.stack([question, topic, cause]), topic)
    assert abs(centred[0]) < 1e-6 and centred[1] > 0.1
    plain = _cosines(np.stack([question, topic / np.linalg.norm(topic)]), None)
    assert float(plain[0]) > 0.3  # before: close to every question about cramps


def test_a_claim_brings_the_sentence_that_explains_it(embedder):
    chosen = select_evidence("Why does a sedentary job cause night cramps?", [WORK, CAUSES], embedder)
    texts = [unit.text for unit in chosen]
    assert texts[0].startswith("Sitting or standing work.")
    assert any("blood circulation" in text for text in texts[1:])


def test_a_passage_retrieval_ranked_far_lower_cites_less(embedder):
    question = "Why do my calves cramp at night?"
    equal = select_evidence(question, [CAUSES, WORK], embedder, retrieval_scores=[1.0, 1.0])
    behind = select_evidence(question, [CAUSES, WORK], embedder, retrieval_scores=[1.0, 0.5])
    assert {u.number for u in behind} <= {u.number for u in equal}
    assert 2 not in {u.number for u in behind}


def test_an_answer_quotes_at_most_six_sentences_whatever_it_selects(shared_retriever):
    causes = [p for p in shared_retriever.load().passages
              if p.section == "Causes of night pain in the calves"]
    chosen = select_evidence("What causes calf cramps at night?", causes, shared_retriever.embedder,
                             max_units=8, margin=5, other_margin=None, floor=-1)
    assert len(chosen) >= 3
    assert sum(len(display_sentences(unit.text)) for unit in chosen) <= 6


def test_a_right_now_question_gets_first_aid_not_prevention(embedder):
    bath = passage("Alternatively, try to relieve pain with the help of baths with warm water. To do "
                   "this, fill the tub with water up to the knees and put your legs in it.",
                   section="What to do", pid="t#6", start=2000)
    prevent = passage("To prevent calf muscle cramps from recurring, you need to eliminate provoking "
                      "factors. Such symptoms are relieved by a proper balanced diet rich in greens.",
                      section="What to do", pid="t#7", start=3000)
    units = passage_units(bath)
    assert units == ["Alternatively, try to relieve pain with the help of baths with warm water. To do "
                     "this, fill the tub with water up to the knees and put your legs in it."]
    chosen = select_evidence("What should I do when my calf cramps right now?", [prevent, bath],
                             embedder, retrieval_scores=[1.0, 1.0])
    assert chosen[0].number == 2
    assert not any("prevent" in unit.text or "diet" in unit.text for unit in chosen)


def test_a_sentence_the_chunker_cut_off_comes_with_its_unit_from_the_next_chunk(embedder):
    from bot.compose import with_following

    veins = passage("In addition, muscle cramps can occur in chronic venous insufficiency. Before you "
                    "start treatment, it is recommended to do an ultrasound of the veins, Doppler or "
                    "scanning.", section="Why the calves cramp", pid="t#8", start=5000)
    after = passage("A phlebologist then prescribes treatment. In some cases, pain in the calf is a "
                    "signal of a blood pressure disorder.", section="Why the calves cramp", pid="t#9",
                    start=5160)
    question = "What tests do I need for venous insufficiency cramps?"
    alone = select_evidence(question, [veins], embedder, retrieval_scores=[1.0])
    assert not any("phlebologist" in unit.text for unit in alone)
    shown, nexts = with_following([veins], [after])
    assert [p.id for p in shown] == ["t#8", "t#9"] and nexts == {1: 2}
    chosen = select_evidence(question, shown, embedder, retrieval_scores=[1.0], nexts=nexts, brought=1)
    texts = [unit.text for unit in chosen]
    ultrasound = next(k for k, text in enumerate(texts) if "ultrasound" in text)
    assert texts[ultrasound + 1] == "A phlebologist then prescribes treatment."
    assert chosen[ultrasound + 1].number == 2
    # The next chunk is only a follower: its blood-pressure sentence is never chosen on its own.
    assert not any("blood pressure" in text for text in texts)


def test_a_next_chunk_off_the_asked_kind_is_no_completion(embedder):
    """"...precursors of varicose veins." ends its chunk; the next one opens with pregnancy, which
    a question that names none did not ask about."""
    from bot.compose import with_following

    monthly = passage("Therefore, if at least once a month you have a calf muscle cramp, you should "
                      "think about a comprehensive medical examination. In women in particular, "
                      "spasms of the calf muscles may be precursors of varicose veins.",
                      section="Why does the calf muscle cramp during sleep?", pid="t#10", start=7000)
    after = passage("And during pregnancy, future mothers should be especially careful: in the "
                    "last trimester, this can be a symptom of gestational diabetes mellitus.",
                    section="Why does the calf muscle cramp during sleep?", pid="t#11", start=7200)
    shown, nexts = with_following([monthly], [after])
    for question, brought in (("could my calf cramps be an early sign of varicose veins?", False),
                              ("I am pregnant, could my calf cramps be an early sign of varicose "
                               "veins?", True)):
        chosen = select_evidence(question, shown, embedder, retrieval_scores=[1.0], nexts=nexts,
                                 brought=1)
        assert any("precursors of varicose" in unit.text for unit in chosen)
        assert any("gestational" in unit.text for unit in chosen) == brought, question


def test_a_question_what_to_do_gets_the_advice_that_follows_its_cause(embedder):
    """"is this normal, what can i do" was answered by the calcium cause alone; the source's next
    sentence is what to do about it."""
    pregnancy = passage("Pregnant women very often suffer from leg pain. Because of the growing load "
                        "on the body and the doubled use of useful salts and minerals, pregnant "
                        "women do not get enough calcium. This leads to cramps and pain in the "
                        "calves. As a rule, the situation is corrected by taking additional vitamins "
                        "and mineral complexes.", section="Why the calves cramp", pid="t#12",
                        start=9000)
    texts = {q: [unit.text for unit in select_evidence(q, [pregnancy], embedder, retrieval_scores=[1.0])]
             for q in ("I'm 7 months pregnant and my calves cramp every night. is this normal, "
                       "what can i do", "why do my calves cramp in pregnancy?")}
    advised = [any("vitamins and mineral complexes" in t for t in chosen) for chosen in texts.values()]
    assert advised == [True, False]


def test_advice_goes_on_as_far_as_its_passage_advises(embedder):
    """"how do I prevent them?" had two of the four sentences of the source's prevention advice:
    the best one repeats the question's words, the valerian course and mint tea do not."""
    prevent = passage("To prevent calf muscle cramps from recurring, you need to eliminate provoking "
                      "factors. It is recommended to put the nervous system in order by eliminating "
                      "the irritating aspects of daily life. You can take a course of valerian or "
                      "sedative herbal mixtures. Soothing mint tea is also good.",
                      section="What to do about calf muscle cramps", pid="t#13", start=11000)
    texts = " ".join(unit.text for unit in select_evidence(
        "how do I prevent calf cramps?", [prevent], embedder, retrieval_scores=[1.0]))
    assert "valerian" in texts and "mint tea" in texts
    # It stops at the first unit that advises for a condition the question does not name.
    diet = passage("The so-called potassium diet also helps in this case: you need to eat more "
                   "bananas, kiwi and honey. Before you start treatment of the veins, it is "
                   "recommended to do an ultrasound of the veins, Doppler or scanning.",
                   section="Why the calves cramp", pid="t#14", start=12000)
    texts = " ".join(unit.text for unit in select_evidence(
        "what foods should I eat so my legs stop cramping?", [diet], embedder, retrieval_scores=[1.0]))
    assert "bananas" in texts and "ultrasound" not in texts


def test_a_question_that_names_its_item_gets_no_other_item_of_the_list(embedder):
    """"can my shoes be causing my calf cramps?" was answered by the shoes item and the two
    items beside it in the passage, which it does not ask about."""
    items = passage("Caffeine abuse. When you drink more than 5 cups of strong tea or coffee a day, "
                    "your calf muscles may cramp. Wearing uncomfortable shoes. In the daytime the leg "
                    "muscles get really tired and at night can't relax. Metabolic disorders. As a "
                    "result, muscle mass may experience a lack of oxygen and nutrition.",
                    section="Causes of night pain in the calves", pid="t#15", start=13000)

    def chosen(question):
        return " ".join(u.text for u in select_evidence(question, [items], embedder,
                                                        retrieval_scores=[1.0]))

    shoes = chosen("can my shoes be causing my calf cramps? i wear heels at work all day")
    assert "shoes" in shoes and "Caffeine" not in shoes and "Metabolic" not in shoes
    both = chosen("can coffee and uncomfortable shoes cause calf cramps?")
    assert "shoes" in both and "Caffeine" in both


def test_a_unit_that_announces_examples_comes_with_them_or_not_at_all(embedder):
    """"Besides treatment, other remedies can also relieve the pain." ended answers whose
    sentence budget left out "For example, massage. ..." (in Russian too: «Кроме лечения,
    облегчить боль могут и другие средства»): remedies named to the reader and never shown."""
    pressure = passage("In some cases, pain in the calf is a signal of a blood pressure disorder. "
                       "Such symptoms are relieved by a proper balanced diet rich in greens, fruits "
                       "and dairy products. Normalize the pressure, relax. And the pain will go "
                       "away. Besides treatment, other remedies can also relieve the pain. For "
                       "example, massage. Gently stroke the cramped limb. Then gradually massage "
                       "the foot with very light tapping. It relieves the spasm of the vessels. "
                       "Lightly stroke them under the water. The water will relax the muscles.",
                       section="Why the calves cramp", pid="t#16", start=14000)
    question = "my blood pressure jumps around and my calves hurt, what should I eat?"
    texts = [u.text for u in select_evidence(question, [pressure], embedder, retrieval_scores=[1.0])]
    assert any("balanced diet" in t for t in texts)
    announced = [k for k, t in enumerate(texts) if t.startswith("Besides treatment")]
    assert all(k + 1 < len(texts) and texts[k + 1].startswith("For example") for k in announced), texts
