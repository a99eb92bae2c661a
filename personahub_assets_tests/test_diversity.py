import numpy as np
import pytest

from personahub_assets.lib.curation.vectors import normalize
from personahub_assets.lib.quality.diversity import (
    distinct_n,
    diversity_metadata,
    embedding_metadata,
    mean_pairwise_cosine,
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


def test_mean_pairwise_cosine_matches_the_full_matrix():
    rng = np.random.default_rng(3)
    vectors = normalize(rng.normal(size=(40, 16)))
    gram = vectors @ vectors.T
    expected = (gram.sum() - np.trace(gram)) / (40 * 39)
    assert mean_pairwise_cosine(vectors) == pytest.approx(expected, abs=1e-6)
    assert mean_pairwise_cosine(vectors[:1]) == 0.0


@pytest.mark.model
def test_embedding_spread_separates_alike_from_varied_outputs():
    from personahub_assets.lib.curation.encoders import StaticEncoder

    encoder = StaticEncoder()
    personas = ["A nurse in Oslo who works night shifts.", "A welder in Perth who builds boats.",
                "A judge in Lima who hears land disputes."]
    alike = ["Write me a short poem about the sea at night",
             "Write a short poem about the sea at night, please",
             "Please write me a short poem about the night sea"]
    varied = ["Plan a night-shift rota for six nurses", "Which rod suits thin steel welds?",
              "Summarize the appeal ruling in plain words"]
    p = encoder.encode(personas)
    same = embedding_metadata(encoder.encode(alike), p)
    diverse = embedding_metadata(encoder.encode(varied), p)
    assert same["embedding_spread"] < diverse["embedding_spread"]
    assert same["output_vs_persona_embedding_similarity"] > (
        diverse["output_vs_persona_embedding_similarity"])
    assert same["persona_embedding_spread"] == diverse["persona_embedding_spread"] > 0
