import pytest

from personahub_assets.lib.diversity import (
    distinct_n,
    diversity_metadata,
    mean_pairwise_jaccard,
    near_duplicate_rate,
)


def test_distinct_n():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a,b) (b,a) (a,b)
    assert distinct_n([], 2) == 0.0


def test_near_duplicate_rate_counts_copies():
    base = "a quiet harbour town where the ferry leaves at six every single morning"
    assert near_duplicate_rate([base, base + " sharp", "something else entirely here"]) == (
        pytest.approx(1 / 3))


def test_similar_outputs_for_different_personas_score_high():
    personas = ["A nurse in Oslo.", "A welder in Perth.", "A judge in Lima."]
    same = ["Write me a short poem about the sea at night"] * 3
    varied = ["Plan a night-shift rota for six nurses", "Which rod suits thin steel welds?",
              "Summarize the appeal ruling in plain words"]
    assert diversity_metadata(same, personas)["output_vs_persona_similarity"] > (
        diversity_metadata(varied, personas)["output_vs_persona_similarity"])
    assert mean_pairwise_jaccard(same) == 1.0
