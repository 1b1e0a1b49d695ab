"""bench.generation's arithmetic and table: ratios to llama.cpp and the prompt-length column."""
from bench import generation as bench


def _result(variant: str, first: float, decode: float, prompt_tokens=None) -> dict:
    return {"preset": "default", "variant": variant, "summary": {
        "prompt_tokens": prompt_tokens, "first_token_s": first, "decode_tokens_per_s": decode,
        "total_s": first + 10, "generated_tokens": 33, "cpu_s_per_token": 0.5, "peak_rss_mb": 2000,
        "load_s": 1.0, "mean_verified_fraction": 1.0, "declines": 0, "load_average_range": [0.4, 0.9]}}


def test_every_variant_is_shown_beside_llamacpp_on_the_same_preset():
    results = [_result("llamacpp", 3.0, 22.0), _result("transformers-int4", 3.3, 11.0, 412),
               {"preset": "default", "variant": "transformers-int8", "error": "killed"}]
    bench.add_ratios(results)
    assert results[0]["vs_llamacpp"]["decode_tokens_per_s"] == 1.0
    assert results[1]["vs_llamacpp"]["decode_tokens_per_s"] == 0.5
    assert results[1]["vs_llamacpp"]["first_token_s"] == 1.1
    lines = bench.table(results).splitlines()
    assert "prompt tokens" in lines[0]
    assert "| transformers-int4 | 412 | 3.3s (1.1×) | 11 (0.5×) |" in lines[3]
    assert "failed: killed" in lines[4]  # a crashed variant is shown, not dropped


def test_prompt_tokens_are_counted_only_by_backends_that_can():
    class Counting:
        def prompt_tokens(self, messages):
            return 7 * len(messages)

    assert bench._prompt_tokens(Counting(), [{}, {}]) == 14
    assert bench._prompt_tokens(object(), [{}]) is None


def test_query_expansion_summary_compares_both_rankings():
    from bench.query_expansion import summarize

    # Ranks come from evals.metrics.first_hit_rank: None when no gold passage is in the top 10.
    rows = [{"base": 1, "hyde": 2}, {"base": None, "hyde": 3}, {"base": 4, "hyde": None}, {"base": None, "hyde": 1}]
    assert summarize(rows) == {
        "cases": 4,
        "plain": {"cases": 4, "hit_at_1": 0.25, "hit_at_3": 0.25, "mrr_at_10": round((1 + 1 / 4) / 4, 4)},
        "hyde": {"cases": 4, "hit_at_1": 0.25, "hit_at_3": 0.75, "mrr_at_10": round((1 / 2 + 1 / 3 + 1) / 4, 4)},
    }
