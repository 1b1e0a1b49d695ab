"""Red-flag triage on realistic messages: every rule fires, ordinary cramp questions do not."""
from __future__ import annotations

import json
import re

import pytest

from bot.safety.input_guard import detect_language
from bot.safety.redflags import RULES_PATH, RedFlagRulesError, load_rules, triage

# Messages a worried person might type, by the rule they should fire (English, then Russian).
URGENT = {
    "stroke": [
        "My dad's face is drooping on one side and he can't lift his arm",
        "I woke up with numbness down the whole left side of my body and my speech is slurred",
        "Suddenly my right arm went weak and I can't get my words out",
        "my mouth feels droopy and my words come out jumbled, is this from the cramp?",
        "sudden weakness in my left arm and leg after a bad leg cramp",
        "my wife's smile is lopsided and she's slurring",
        "half my face went numb out of nowhere",
        "can't raise my left arm and my face feels weird",
        "Dad suddenly can't talk properly and his arm is limp",
        "my grandpa's speech is garbled and he's confused",
        "the right side of my face feels numb and droopy",
        "У мамы перекосило лицо и речь стала невнятной",
        "Внезапно онемела правая рука и нога, не могу говорить",
        "лицо перекосило, рука не поднимается",
        "внезапно онемела половина лица",
        "у папы онемела левая сторона тела",
    ],
    "chest_breathing": [
        "I have crushing pain in my chest and my left arm feels heavy",
        "Sudden shortness of breath, and my calf was swollen yesterday",
        "my chest feels tight and I can't catch my breath",
        "I get cramps in my legs and now I'm short of breath even when resting",
        "coughing up blood and calf pain after surgery",
        "pressure in my chest spreading to my jaw",
        "my chest hurts when I breathe and my leg is swollen",
        "Sudenly cant breath properly",
        "i feel like i cant breathe and my calf was hurting for days",
        "sharp pain in my chest when I take a deep breath",
        "Сильная боль в груди, отдаёт в левую руку",
        "Внезапно началась одышка, не хватает воздуха",
        "давит за грудиной",
        "тяжело дышать после того как опухла нога",
        "мне не хватает воздуха и болит в груди",
    ],
    "seizure_unresponsive": [
        "My wife is convulsing all over and not responding to me",
        "he had a seizure after the cramps and now he won't wake up",
        "my son is shaking and jerking on the floor and not responding",
        "Мама без сознания, перед этим у неё сводило ноги",
        "ребенка трясет судорогами все тело, что делать",
    ],
    "leg_ischaemia": [
        "My foot has gone cold and white and I can't feel a pulse",
        "my leg suddenly turned pale and numb and it hurts like hell",
        "Toes on my right foot are ice cold and bluish since this morning",
        "my lower leg is freezing cold and turned a mottled blue color",
        "foot went white and I can't find a pulse at my ankle",
        "my leg is cold and pale and I can't move my toes",
        "Нога стала холодной и бледной, пульс не прощупывается",
        "Стопа внезапно посинела и онемела",
        "нога ледяная и синяя, очень больно",
        "нога похолодела и побелела, сильная боль",
    ],
    "leg_clot": [
        "My left calf is swollen, red and hot since my long flight yesterday",
        "one of my calves is bigger than the other and it's painful to walk",
        "After my knee surgery my calf hurts and feels warm to the touch",
        "calf pain that won't go away 3 days after a long haul flight",
        "my right leg is swolen and tender, I'm on the pill",
        "I had a cast on my leg for 6 weeks and now my calf aches constantly",
        "calf is swollen and throbbing since I got my cast off",
        "my calf has a hot red patch and it's really tender",
        "left leg twice the size of the right and sore",
        "Cramp-like pain in my calf for 4 days since I got back from Australia",
        "back of my knee and calf are swollen and it hurts to put weight on it",
        "I think I have a blood clot, my calf is red and painful",
        "calf swollen and shiny after sitting on a 14 hour flight",
        "I'm on bed rest after a fracture and my calf aches and feels tight",
        "I can't walk, my calf is swollen and hot",
        "There is no way this is a cramp, my calf is huge and red and hot",
        "Опухла и покраснела икра после перелёта",
        "После операции болит икра и отекла нога",
        "Левая нога отекла и горячая на ощупь",
        "Не могу наступить на ногу, икра опухла и горячая",
        "икра болит и опухла уже три дня",
        "после родов отекла и болит нога",
        "нога опухла ниже колена и болит при ходьбе",
        "после гипса икра стала толще другой и болит",
    ],
    "preeclampsia": [
        "I'm 34 weeks pregnant with leg cramps and now a terrible headache and blurry vision",
        "pregnant, my face and hands suddenly swelled up overnight",
        "32 weeks pregnant and seeing flashing lights, also calf cramps at night",
        "I'm in my third trimester and have a bad headache that won't go away",
        "36 weeks pregnant, pounding headache and I keep seeing spots",
        "pregnant and my vision went blurry, plus leg cramps",
        "gave birth 5 days ago, severe headache and swollen face",
        "I'm 38 weeks and suddenly my hands and face are really swollen, plus a headache",
        "pregnant with pain under my ribs on the right side and a bad headache",
        "Беременность 35 недель, сильная головная боль и мушки перед глазами",
        "Я беременна, резко отекло лицо и руки",
        "беременна, болит голова сильно и двоится в глазах",
    ],
    "infection_spasms": [
        "I stepped on a rusty nail last week and now my jaw is stiff and I get muscle spasms",
        "high fever, stiff neck and leg cramps",
        "My son can't open his mouth properly and has painful spasms after a cut on his foot",
        "my jaw is locked and my whole body keeps spasming",
        "feverish for two days, struggle to open my jaw, cramping all over",
        "fever of 39 and my neck is so stiff I can't touch my chin to my chest",
        "stiff neck, high temperature and a rash that doesn't fade under a glass",
        "Температура 39, шея не сгибается, болит голова",
        "Сводит челюсть и мышцы после раны от гвоздя",
        "ригидность затылочных мышц и температура",
        "сильный жар и не могу наклонить голову к груди",
    ],
    "alcohol_withdrawal": [
        "I stopped drinking 2 days ago and now my hands are shaking and I feel confused",
        "quit alcohol three days ago, having tremors and cramps, saw things that weren't there",
        "Had a seizure after quitting booze cold turkey",
        "i quit drinking on monday, now im shaking and sweating and cant sleep",
        "detoxing from alcohol at home, getting the shakes and cramps",
        "stopped drinking vodka yesterday, hands trembling, heart racing, hallucinating",
        "Бросил пить три дня назад, трясутся руки и всё время знобит",
        "После запоя трясёт, вижу то, чего нет",
        "не пью 3 дня, руки трясутся, кажется, что кто-то ходит",
        "бросила пить, вторые сутки трясёт и судорожный припадок был",
        "неделю как отказался от алкоголя, ноги сводит, мысли путаются",
        "вышел из запоя, ничего не соображаю и сводит икры",
    ],
    "poisoning": [
        "My kid swallowed some bleach and now he's twitching",
        "got bitten by a spider yesterday and now I have terrible muscle cramps",
        "I sprayed pesticide in the garden and now my muscles are twitching and cramping",
        "my toddler ate some berries from the garden and is twitching",
        "I think I inhaled carbon monoxide from the heater, I have a headache and muscle cramps",
        "was stung by a scorpion and now having muscle spasms",
        "cramps and drooling after spraying insecticide",
        "My dog... no, I mean my son drank antifreeze and is having spasms",
        "Отравился грибами, теперь судороги в ногах",
        "Выпил много таблеток и сводит мышцы",
        "наглотался таблеток, дергаются мышцы",
        "my son drank something from a bottle in the garage and now his legs are cramping",
        "ребёнок выпил что-то из бутылки в гараже, теперь судороги в ногах и рвёт",
    ],
    "heat_illness": [
        "Worked on a building site all day in the heat, now I have cramps and I've stopped sweating",
        "After the hike in 36 degrees my brother is confused and his legs are cramping",
        "My skin is hot and dry after the sauna and my calves keep cramping",
        "she collapsed during the heatwave after her legs cramped",
        "Весь день на солнце, ноги сводит, а теперь перестал потеть",
        "После пробежки в жару муж заговаривается и его сводят судороги",
        "муж весь день копал на даче на жаре, теперь сводит ноги и он какой-то заторможенный, путает слова",
        "worked outside in the heat all afternoon, now cramping and not making sense",
    ],
    "muscle_breakdown": [
        "After a crossfit session my thighs are killing me, my muscles are so sore and my urine is dark brown",
        "My pee looks like cola and my muscles ache after running a marathon in the heat",
        "Cramps after a long run in the heat and my urine is dark",
        "urine is the colour of tea after a spin class and my thighs are rock hard and sore",
        "peeing brown after a heat stroke, all my muscles hurt",
        "brown pee and severe muscle pain after my first crossfit class",
        "После тренировки болят мышцы и тёмная моча",
        "Моча цвета колы и сильная боль в мышцах ног",
        "моча бурая, мышцы болят и опухли после тренировки",
        "после марафона моча тёмная и мышцы сильно болят",
    ],
}

# What people ordinarily ask a cramp assistant; none of these describes an emergency.
ORDINARY = [
    "My calf cramps do not respond to stretching anymore",
    "Нога не реагирует на массаж, судорога долго не проходит",
    "I get shaking legs and cramps all over after a long run",
    "Всё тело болит после тренировки и икры сводит",
    "I'm confused about whether heat or cold helps a cramp",
    "в жару сводит икры, путаю, что лучше: тепло или холод?",
    "I ate something in the morning and got cramps in the evening",
    "выпил что-то в обед и свело ногу",
    "I sweat a lot in hot weather and my calves cramp, should I drink more?",
    "в жару часто сводит ноги, что делать?",
    "why do my calves cramp at night",
    "leg cramps after running",
    "is magnesium good for cramps",
    "cramps in pregnancy what helps",
    "my calf cramped while swimming",
    "cramps after drinking coffee",
    "How do I stop a calf cramp quickly?",
    "What stretches help prevent night leg cramps?",
    "Does quinine help with leg cramps?",
    "I get charley horses in bed almost every night, what can I do?",
    "Is it normal for my calf to be sore the day after a bad cramp?",
    "Can dehydration cause muscle cramps?",
    "Do bananas really help with cramps?",
    "My calves cramp when I point my toes in bed",
    "Can statins cause leg cramps?",
    "I get leg cramps when I sit for a long time at my desk",
    "What's the difference between a cramp and a muscle spasm?",
    "cramps in my calves after cycling in hot weather",
    "is pickle juice good for cramps",
    "do electrolyte drinks prevent cramps during sport",
    "my legs cramp after standing all day at work",
    "which vitamin deficiency causes leg cramps?",
    "I wake up with calf cramps every morning, why?",
    "can diuretics cause cramps",
    "how much water should I drink to avoid cramps",
    "why do older people get more leg cramps",
    "muscle cramps during marathon training",
    "cramps at night in the third trimester of pregnancy, is that normal?",
    "my 8 year old gets leg cramps at night, are these growing pains?",
    "Should I use heat or ice on a calf that cramped?",
    "Is a hot bath good for calf cramps?",
    "I get cramps after drinking alcohol, why?",
    "Are leg cramps and restless legs the same thing?",
    "Does stretching before bed help with night cramps?",
    "Can low potassium cause calf cramps?",
    "foot and calf cramps when swimming in cold water",
    "My calf cramped during a flight, how can I prevent that next time?",
    "Why does my calf still hurt after a cramp?",
    "I started a new blood pressure medicine and now I get leg cramps",
    "my calf muscle feels tight after a cramp last night",
    "Can tight shoes cause foot cramps?",
    "Are leg cramps a sign of diabetes?",
    "How can I tell a cramp from a blood clot?",
    "I'm pregnant and get leg cramps every night, is it safe to take magnesium?",
    "my legs ache and cramp after a long day on my feet",
    "My pee is dark yellow after long runs and I get cramps, am I dehydrated?",
    "I get cramps in my toes and feet, what helps?",
    "Is it bad to walk right after a cramp?",
    "I cut down on coffee and now get cramps, could that be related?",
    "Can magnesium deficiency cause eye twitching and cramps?",
    "I got cramps after giving blood, is that common?",
    "My legs swell a little in the evening and I get cramps at night",
    "I'm 7 months pregnant, feet a bit swollen and cramps at night, what helps?",
    "I get cramps and feel out of breath when I run uphill",
    "Why do I get cramps in my hands when I write?",
    "Does tonic water help leg cramps?",
    "Why do my calves cramp since I stopped taking my blood pressure pills?",
    "I get cramps in my legs after chemo, what can I do?",
    "Do cramps get worse in hot weather?",
    "my calf hurts after a cramp in the pool, should I rest it?",
    "why do I get a cramp in my calf when I stretch in the morning",
    "what foods are high in magnesium",
    "my calf muscle twitches at rest, is that a cramp?",
    "I'm a runner and get calf cramps at mile 20",
    "does sleeping position affect night cramps?",
    "leg cramps after surgery, is that normal?",
    "best stretches for calf cramps",
    "cramp in my foot arch when swimming",
    "cramps after dialysis",
    "my grandmother has leg cramps every night",
    "can sitting cross-legged cause cramps",
    "is it a cramp or a pulled muscle in my calf",
    "I have calf pain when walking that goes away with rest",
    "my legs feel heavy and crampy after a long flight",
    "what does a charley horse feel like",
    "why do cramps hurt so much",
    "my calves are tight and sore after a hike",
    "cramps when I stopped drinking soda",
    "cramps after quitting smoking",
    "I get a cramp in my neck sometimes",
    "leg cramps and numbness in my toes",
    "night cramps and cold feet",
    "my feet turn blue in cold weather and cramp",
    "is it safe to exercise with leg cramps",
    "does vitamin D help cramps",
    "how to prevent cramps while pregnant with twins",
    "can I take ibuprofen for calf pain after a cramp",
    "my calf still feels bruised two days after a cramp",
    "Why does my left calf cramp more than my right?",
    "I get cramps when I'm cold",
    "I feel dizzy and get leg cramps when I stand up",
    "Muscle cramps and fatigue, could it be my thyroid?",
    "my heart races and my legs cramp at night",
    "I've had a headache and leg cramps since starting my new medication",
    "Cramps and tingling in my hands and around my mouth",
    "my toes go white in the cold and then cramp",
    "I travel a lot for work and get leg cramps in hotels",
    "my calf hurts when I stretch it",
    "Can a cramp cause a bruise on my calf?",
    "Why do my legs cramp during my period?",
    "cramps in my calf after a long drive",
    "why do I get cramps when I point my toes during yoga",
    "can a cold shower help with cramps",
    "calf cramps when wearing high heels",
    "do compression socks help leg cramps on flights",
    "my calf is sore from running, is it a cramp?",
    "cramps and red wine, any link?",
    "I drink red bull before football and get cramps",
    "cramps while driving long distances",
    "my legs are restless and achy at night",
    "why do my hands cramp when I hold my phone",
    "can anxiety cause muscle twitching and cramps",
    "are leg cramps common after hip replacement years ago",
    "I had a cramp in my calf that woke me up screaming, is that normal?",
    "how long does soreness last after a leg cramp",
    "is it ok to drink water with electrolytes every day",
    "leg cramps and heart medication",
    "can cramps be caused by sitting on a plane",
    "does heat make leg cramps worse",
    "does salt help cramps",
    "my child has cramps after football practice",
    "is it normal to have cramps after a c-section",
    "why do cramps come at night and not during the day",
    "cramps in my calf when I swim in cold water, how to stop them",
    "does alcohol make cramps worse",
    "I have diabetes and get cramps, what should I do",
    "I get cramps after gym leg day, should I stretch more",
    "my legs feel tired and crampy after standing at work",
    "stretching routine for runners with cramps",
    "Does potassium or magnesium work better for cramps?",
    "What causes cramps in the feet at night?",
    "I had surgery years ago and still get cramps",
    "my calf hurts when I walk uphill",
    "leg pain and cramps when I lie down, why?",
    "can I fly with leg cramps",
    "should I see a doctor about frequent leg cramps?",
    "is it normal that my calf feels hot after a massage?",
    "my calf looks red after I rubbed it during a cramp",
    "my pee is dark in the morning, could that cause cramps?",
    "cramps after drinking red wine at dinner",
    "I get cramps when my feet are cold in bed",
    "the cramp was so painful I could barely breathe for a second",
    "leg cramps when lying in bed after a long hospital shift",
    "does the birth control pill cause leg cramps?",
    "my face twitches and I get calf cramps, is it magnesium?",
    "I feel weak and get cramps after sweating a lot",
    "my hands go numb at night and I get calf cramps",
    "cramps in my stomach and legs during my period",
    "after a long flight my ankles were a bit puffy and my calves cramped",
    "can chemo cause muscle cramps?",
    "cramp in the back of my thigh while sprinting",
    "why does my foot go numb and cramp when I sit cross legged",
    "cramps when I stop drinking coffee for a day",
    "my legs feel heavy and swollen in summer heat",
    "is a swollen ankle after a sprain related to cramps?",
    "cramps while pregnant with a headache sometimes",
    "I get a headache and cramps when dehydrated",
    "my vision gets blurry when I'm tired, and I get leg cramps",
    "twitching eyelid and leg cramps",
    "stiff muscles and cramps in the morning",
    "I got cramps after a tetanus shot",
    "cramps after being in a cast for a broken wrist",
    "Can heat stroke cause cramps?",
    "cramps in my calves after a sauna",
    "my calf hurt for a day after a cramp, now it's fine",
    "how to avoid cramps on a long car journey",
    "спазмы в икрах ночью",
    "Ночью сводит икры, что делать?",
    "Судороги в ногах при беременности — что помогает?",
    "Почему сводит ногу после тренировки?",
    "Помогает ли магний от судорог в икрах?",
    "Судороги в икрах после бега",
    "Как быстро снять судорогу в икре?",
    "Колит в икре после долгой ходьбы, это судорога?",
    "Можно ли делать массаж при судорогах в икрах?",
    "От чего бывают судороги в ногах у пожилых?",
    "Сводит пальцы ног и икры по ночам — не хватает кальция?",
    "Болят икры после судороги, это нормально?",
    "Могут ли статины вызывать судороги в ногах?",
    "Помогает ли горячая ванна от судорог в ногах?",
    "ноги сводит после бани",
    "икры забиваются после бега, что делать",
    "почему судороги только в левой ноге?",
    "судороги и онемение пальцев ног",
    "ночные судороги при варикозе",
    "сводит икры после алкоголя",
    "у ребенка судороги в ногах по ночам",
    "Болит икра после судороги уже второй день",
    "беременна, ноги отекают к вечеру и сводит икры",
    "после родов начались судороги в ногах по ночам",
    "Судороги икр после бассейна",
    "Почему сводит ноги во время плавания в холодной воде?",
    "Судороги при варикозе, что делать?",
    "Помогают ли компрессионные чулки от судорог в самолёте?",
    "Беременна, по ночам сводит икры, можно ли магний?",
    "Болит икра после тренировки, это нормально?",
    "Можно ли пить красное вино при судорогах?",
    "Почему судороги бывают у детей?",
    "Судороги и мурашки в ногах по вечерам",
    "Как растягивать икры перед сном?",
    "После массажа икра красная, это нормально?",
    "Почему сводит ноги после бани?",
    "Тёмно-жёлтая моча и судороги — это обезвоживание?",
    "Сводит ноги при беременности и иногда болит голова",
    "После перелёта немного отекли ноги, это опасно?",
    "Холодные ноги и судороги по ночам",
    "Судороги после отмены кофе",
    "Онемение в пальцах ног и судороги",
]

NEGATED = [
    "No chest pain, just cramps in my calves at night",
    "I don't have chest pain or shortness of breath, only calf cramps",
    "My calf is not swollen or red, it just cramps at night",
    "There's no swelling or redness in my leg, only a cramp",
    "I'm pregnant, no headache or vision problems, just leg cramps",
    "no fever and no stiff neck, just muscle cramps",
    "Without any swelling, my calf cramps after running",
    "My foot isn't cold or pale, it just cramps",
    "Denies chest pain; calf cramps at night",
    "Нет боли в груди, только судороги в икрах",
    "Икра не опухла и не покраснела, просто сводит ночью",
    "Одышки нет, температуры нет, только судороги",
    "Грудь не болит, просто сводит ноги",
    "I am not pregnant but I have a terrible headache and cramps",
    "I have never had chest pain, only calf cramps",
    "No fever, but my neck is a bit stiff from sleeping badly",
    "Я не беременна, но сильно болит голова",
]

MAX_FALSE_ALARM_RATE = 0.05


def _cases():
    return [(rule_id, message) for rule_id, messages in URGENT.items() for message in messages]


def test_every_rule_has_english_and_russian_examples():
    assert set(URGENT) == {rule.id for rule in load_rules().rules}
    for rule_id, messages in URGENT.items():
        languages = [detect_language(m) for m in messages]
        assert languages.count("en") >= 2 and languages.count("ru") >= 1, rule_id


@pytest.mark.parametrize("rule_id, message", _cases())
def test_urgent_message_fires_its_rule(rule_id, message):
    flag = triage(message)
    assert flag is not None, f"missed: {message}"
    assert flag.rule_id == rule_id, f"{message!r} fired {flag.rule_id}"
    assert flag.matched and all(word in _normalized(message) for word in flag.matched)


def test_detection_and_false_alarm_rates():
    cases = _cases()
    detected = sum(triage(message) is not None for _, message in cases)
    alarms = [m for m in ORDINARY if triage(m) is not None]
    detection, false_alarms = detected / len(cases), len(alarms) / len(ORDINARY)
    print(f"\nred-flag detection: {detected}/{len(cases)} = {detection:.1%}; "
          f"false alarms on ordinary questions: {len(alarms)}/{len(ORDINARY)} = {false_alarms:.1%}")
    for message in alarms:
        print(f"  false alarm: {message!r} -> {triage(message).rule_id}")
    assert len(ORDINARY) >= 40
    assert false_alarms <= MAX_FALSE_ALARM_RATE
    assert detection == 1.0


@pytest.mark.parametrize("message", NEGATED)
def test_negated_symptoms_do_not_fire(message):
    assert triage(message) is None


def test_negation_stays_in_its_clause():
    assert triage("No cramps today, but my calf is swollen and red") is not None
    assert triage("Не знаю, почему опухла и покраснела икра") is not None
    assert triage("I'm not sure why, my chest hurts") is not None


@pytest.mark.parametrize("message, fires", [
    # Long-standing cold, bluish feet are no sudden loss of blood supply: a doctor's visit, not
    # the emergency number (a stranger's session got the emergency advice for the first).
    ("my calves cramp and my feet are always icy and a bit bluish", False),
    ("my feet have been cold and bluish for years, and my calves cramp at night", False),
    ("ноги всегда холодные и бледные, и по ночам сводит икры", False),
    # A sudden change still fires, whatever was always so.
    ("my feet are always cold but today my foot suddenly turned white and numb", True),
    ("my leg has gone pale and icy", True),
])
def test_a_long_standing_cold_pale_foot_is_not_an_emergency(message, fires):
    flag = triage(message)
    assert (flag is not None and flag.rule_id == "leg_ischaemia") is fires, flag


def test_risk_context_is_needed_for_a_painful_calf_alone():
    assert triage("my calf hurts") is None
    flag = triage("my calf hurts since my flight back from Bangkok")
    assert flag is not None and flag.rule_id == "leg_clot" and "flight" in flag.matched


def test_hidden_characters_and_markup_do_not_hide_a_red_flag():
    assert triage("che\u200bst pa\u00adin and I feel faint") is not None
    assert triage("<b>chest</b> <i>pain</i>") is not None
    assert triage("ＣＨＥＳＴ ＰＡＩＮ") is not None
    assert triage("I can\u2019t breathe") is not None


@pytest.mark.parametrize("rule", load_rules().rules, ids=lambda rule: rule.id)
@pytest.mark.parametrize("language", ["en", "ru"])
def test_advice_says_what_to_do_first_and_names_the_number(rule, language):
    message = next(m for m in URGENT[rule.id] if detect_language(m) == language)
    flag = triage(message, emergency_number="911")
    assert flag.rule_id == rule.id
    first_sentence = re.split(r"(?<=[.!?])\s", flag.advice)[0]
    assert "911" in first_sentence and "{" not in flag.advice
    assert flag.avoid and detect_language(flag.advice) == language == detect_language(flag.avoid)


def test_language_can_be_forced():
    assert detect_language(triage("боль в груди", language="en").advice) == "en"
    assert detect_language(triage("chest pain", language="ru").advice) == "ru"


def test_empty_or_blank_message_is_not_a_red_flag():
    assert triage("") is None
    assert triage(" \u200b\n ") is None


def test_long_message_is_triaged_quickly():
    import time

    message = "my calves cramp at night and I do not know why. " * 120 + "Now my chest hurts."
    started = time.perf_counter()
    flag = triage(message)
    assert flag is not None and flag.rule_id == "chest_breathing"
    assert time.perf_counter() - started < 1.0


def test_rules_are_loaded_once():
    assert load_rules() is load_rules()


# -- a malformed rules file fails loudly, naming the place -------------------------------------
def _rules_with(tmp_path, change):
    data = json.loads(RULES_PATH.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _clot(data):
    return next(rule for rule in data["rules"] if rule["id"] == "leg_clot")


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: _clot(d)["patterns"].append({"all_of": ["limb", "fever"]}),
         r"rules\[leg_clot\].*fever"),
        (lambda d: _clot(d)["patterns"].append({"all_of": ["limb"], "none_of": ["chronic"]}),
         r"rules\[leg_clot\].*chronic"),
        (lambda d: _clot(d)["terms"]["limb"].append("calf(ves"), r"rules\[leg_clot\].*calf\(ves"),
        (lambda d: _clot(d)["terms"]["limb"].append("x?"), r"matches empty text"),
        (lambda d: _clot(d).update(needs_contxt=True), r"rules\[leg_clot\].*needs_contxt"),
        (lambda d: _clot(d)["advice"].update(en="Call {number} now."), r"advice\.en"),
        (lambda d: _clot(d)["terms"].update(unused=["foo"]), r"unused"),
        (lambda d: d["rules"].append(dict(_clot(d))), r"not unique.*leg_clot"),
        (lambda d: d.pop("negation"), r"negation"),
        (lambda d: _clot(d).update(context=[]), r"needs context"),
    ],
)
def test_malformed_rules_are_refused_with_a_clear_message(tmp_path, change, expected):
    with pytest.raises(RedFlagRulesError, match=expected) as caught:
        load_rules(_rules_with(tmp_path, change))
    assert str(caught.value).startswith("The red-flag rules file") and "\n" not in str(caught.value)


def test_unreadable_rules_file_is_refused(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1,', encoding="utf-8")
    with pytest.raises(RedFlagRulesError, match="not valid JSON"):
        load_rules(broken)
    with pytest.raises(RedFlagRulesError, match="missing"):
        load_rules(tmp_path / "absent.json")


def _normalized(message: str) -> str:
    from bot.safety.redflags import _normalize

    return _normalize(message)
