"""bench.e2e's turn medians: first questions and follow-ups apart, and their ratio (issue 17)."""
from bench import e2e


def _turn(seconds: float, follow_up: bool, declined: bool = False) -> dict:
    return {"seconds": seconds, "follow_up": follow_up, "declined": declined}


def test_first_questions_and_follow_ups_are_summarized_apart():
    turns = [_turn(2.0, False), _turn(3.0, True), _turn(4.0, False), _turn(9.0, True, True),
             _turn(3.0, False), _turn(3.0, True)]
    summary = e2e.turn_summary(turns)
    assert summary["first_p50_s"] == 3.0 and summary["follow_up_p50_s"] == 3.0
    assert summary["follow_up_ratio"] == 1.0 and summary["declined"] == 1
    assert (summary["first_n"], summary["follow_up_n"]) == (3, 3)


def test_every_conversation_is_a_question_then_its_follow_up():
    assert len(e2e.CONVERSATIONS) >= 5
    result = {"preset": "default", "backend": "transformers-int8", "http_up_s": 5.0,
              "model_ready_s": 17.0, "ready_s": 22.0, "first_answer_s": 25.0,
              "turns": [_turn(2.5, False), _turn(6.5, True)],
              "load_average_before": [1.0], "load_average_after": [1.2]}
    failed = {"preset": "default", "backend": "llamacpp", "error": "TimeoutError: no model"}
    header, _, row, failure = e2e.table([result, failed]).splitlines()
    assert "follow-up ÷ first" in header and "2.6×" in row
    assert failure.count("|") == header.count("|")
