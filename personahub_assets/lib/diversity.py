"""Diversity measures of a set of generated texts (lexical; no model needed)."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from personahub_assets.lib.minhash import jaccard, near_duplicates, word_set

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
