"""Diversity measures of a set of generated texts: lexical ones, and the spread of their
sentence embeddings."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import numpy as np

from personahub_assets.lib.curation.minhash import near_duplicates
from personahub_assets.lib.curation.shingles import jaccard, word_set

_WORD = re.compile(r"\w+")


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of the texts (distinct-n); 0.0 when there are none."""
    total, seen = 0, set()
    for text in texts:
        words = _WORD.findall(text.casefold())
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def near_duplicate_rate(texts: Sequence[str], threshold: float = 0.9) -> float:
    """Share of texts that MinHash-dedup would drop as near-duplicates of an earlier one."""
    return len(near_duplicates(list(texts), threshold)) / len(texts) if texts else 0.0


def mean_pairwise_jaccard(texts: Sequence[str], max_pairs: int = 2000, seed: int = 0) -> float:
    """Mean word-set Jaccard over (a sample of) all pairs: lower means more diverse."""
    n = len(texts)
    if n < 2:
        return 0.0
    sets = [word_set(t) for t in texts]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
    return sum(jaccard(sets[i], sets[j]) for i, j in pairs) / len(pairs)


def diversity_metadata(outputs: Sequence[str], personas: Sequence[str]) -> dict[str, float]:
    """The numbers a person plots per synthesis partition.

    ``output_vs_persona_similarity`` divides the outputs' mean pairwise similarity by the
    personas': near 1 means outputs differ as much as their personas do, far above 1 means the
    model wrote alike texts for different personas.
    """
    out_sim = mean_pairwise_jaccard(outputs)
    persona_sim = mean_pairwise_jaccard(personas)
    return {
        "distinct_1": round(distinct_n(outputs, 1), 4),
        "distinct_2": round(distinct_n(outputs, 2), 4),
        "near_duplicate_rate": round(near_duplicate_rate(outputs), 4),
        "mean_output_similarity": round(out_sim, 4),
        "mean_persona_similarity": round(persona_sim, 4),
        "output_vs_persona_similarity": round(out_sim / persona_sim, 4) if persona_sim else 0.0,
    }


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """Mean cosine over all pairs of distinct rows of unit vectors, in O(n * dim).

    For unit rows the sum of all pairwise products is the squared norm of their sum, so the
    mean over the n(n-1) off-diagonal pairs needs no n x n matrix.
    """
    n = len(vectors)
    if n < 2:
        return 0.0
    total = np.asarray(vectors, dtype=np.float64).sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def embedding_metadata(output_vectors: np.ndarray, persona_vectors: np.ndarray
                       ) -> dict[str, float]:
    """Embedding spread of the outputs (1 - mean pairwise cosine: higher is more diverse), the
    personas' spread, and the outputs' mean cosine over the personas' (near 1: outputs differ
    as much as their personas; far above 1: alike outputs from different personas)."""
    out_cos = mean_pairwise_cosine(output_vectors)
    persona_cos = mean_pairwise_cosine(persona_vectors)
    return {
        "embedding_spread": round(1 - out_cos, 4) if len(output_vectors) > 1 else 0.0,
        "persona_embedding_spread": round(1 - persona_cos, 4)
        if len(persona_vectors) > 1 else 0.0,
        "output_vs_persona_embedding_similarity": round(out_cos / persona_cos, 4)
        if persona_cos > 0 else 0.0,
    }
