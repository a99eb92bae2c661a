import random

import pytest

from personahub_assets.lib.minhash import (
    MinHasher,
    band_recall,
    candidate_pairs,
    jaccard,
    near_duplicates,
    word_set,
)


def test_band_defaults_catch_pairs_at_threshold():
    assert band_recall(0.9, 16, 8) > 0.999
    assert band_recall(0.3, 16, 8) < 0.01


def test_signature_agreement_estimates_jaccard():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(400)]
    a = set(rng.sample(vocab, 100))
    b = set(list(a)[:80]) | set(rng.sample(vocab, 20))
    hasher = MinHasher(num_perm=256, seed=3)
    sa, sb = hasher.signature(frozenset(a)), hasher.signature(frozenset(b))
    estimate = float((sa == sb).mean())
    assert abs(estimate - jaccard(frozenset(a), frozenset(b))) < 0.1


def test_near_duplicates_keeps_first_and_reports_similarity():
    base = " ".join(f"word{i}" for i in range(30))
    texts = [
        base,
        base + " extra",  # Jaccard 30/31 with the first
        "a completely different persona who repairs vintage bicycles in Ghent",
        base.replace("word3 ", ""),  # 29/30
    ]
    dropped = near_duplicates(texts, threshold=0.9)
    assert {d.index for d in dropped} == {1, 3}
    assert all(d.duplicate_of == 0 for d in dropped)
    by_index = {d.index: d for d in dropped}
    assert by_index[1].similarity == pytest.approx(30 / 31)


def test_pairs_below_threshold_are_kept_even_when_candidates():
    texts = ["alpha beta gamma delta epsilon zeta eta theta",
             "alpha beta gamma delta epsilon zeta eta iota"]  # Jaccard 7/9 < 0.9
    assert near_duplicates(texts, threshold=0.9) == []
    # With bands tuned for the lower threshold the same pair is caught and verified.
    assert [d.index for d in near_duplicates(texts, threshold=0.7, bands=32, rows=4)] == [1]


def test_no_kept_pair_reaches_threshold_on_random_corpus():
    rng = random.Random(7)
    vocab = [f"t{i}" for i in range(300)]
    texts = []
    for _ in range(200):
        if texts and rng.random() < 0.3:
            words = rng.choice(texts).split()
            words[rng.randrange(len(words))] = rng.choice(vocab)
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.sample(vocab, 25)))
    dropped = {d.index for d in near_duplicates(texts, threshold=0.9)}
    kept = [word_set(t) for i, t in enumerate(texts) if i not in dropped]
    worst = max(jaccard(a, b) for i, a in enumerate(kept) for b in kept[i + 1:])
    assert worst < 0.9


def test_banding_must_fit_permutations():
    sigs = MinHasher(num_perm=16).signatures([frozenset({"a"})])
    with pytest.raises(ValueError):
        candidate_pairs(sigs, bands=4, rows=8)
