import itertools
import random
from collections import defaultdict

import numpy as np
import pytest

from personahub_assets.lib.curation import lsh, shingles, token_sets
from personahub_assets.lib.curation.lsh import band_keys, candidate_pairs, similar_pairs
from personahub_assets.lib.curation.minhash import band_recall, near_duplicates
from personahub_assets.lib.curation.shingles import jaccard, token_hash, tokenize, word_set
from personahub_assets.lib.curation.token_sets import MinHasher, TokenSets, exact_jaccard


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


# --- Vectorised corpus path -------------------------------------------------------------------

TRICKY_TEXTS = [
    "A retired ferry engineer in Bergen who restores old diesel engines.",
    "A RETIRED ferry-engineer, in Bergen... who restores OLD diesel engines!",
    "",
    "   !!! --- ???   ",
    "Straße café naïve ＡＢＣ ﬁsh ǅemal 日本語 x_y 9lives",
    "strasse CAFÉ abc fish",
    "nul\x00inside a text\x00",
    "exactly8 exactly8chars16bytes seventeen-bytes-x abcdefghijklmnopq "
    "abcdefghijklmnopqrstuvwxyz0123456789 a",
    "tab\tseparated\nlines\r\nand\u00a0nbsp\u2028and — dashes “quotes”",
    "_under_score__ 123 4.5 6,7",
]


def _direct_signature(hasher: MinHasher, tokens: frozenset[str]) -> np.ndarray:
    """Signature straight from the definition, one token at a time."""
    if not tokens:
        return np.full(hasher.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    hashes = np.array([token_hash(t.encode("utf-8", "surrogatepass")) for t in tokens],
                      dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = hasher.a[:, None] * hashes[None, :] + hasher.b[:, None]
    return (mixed >> np.uint64(32)).min(axis=1).astype(np.uint32)


def _reference_near_duplicates(texts, threshold, num_perm=128, bands=16, rows=8):
    """The plain algorithm: per-text signatures, dict buckets, every candidate verified."""
    sets = [word_set(t) for t in texts]
    hasher = MinHasher(num_perm=num_perm)
    signatures = [_direct_signature(hasher, s) for s in sets]
    pairs = set()
    for band in range(bands):
        buckets = defaultdict(list)
        for i, signature in enumerate(signatures):
            buckets[signature[band * rows:(band + 1) * rows].tobytes()].append(i)
        for members in buckets.values():
            pairs.update(itertools.combinations(members, 2))
    neighbours = defaultdict(list)
    for i, j in pairs:
        sim = jaccard(sets[i], sets[j])
        if sim >= threshold:
            neighbours[j].append((i, sim))
    kept, out = set(), []
    for j in range(len(texts)):
        matches = [(sim, -i, i) for i, sim in neighbours.get(j, ()) if i in kept]
        if matches:
            sim, _, i = max(matches)
            out.append((j, i, sim))
        else:
            kept.add(j)
    return out


def _edited_corpus(seed: int, n: int) -> list[str]:
    """Random texts with many edited copies, exact copies after normalisation and empties."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(80)] + ["Straße", "café", "ＡＢＣ", "naïve", "x_y",
                                            "a-very-long-token-of-many-bytes", "ǅ"]
    texts: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if texts and roll < 0.4:
            words = rng.choice(texts).split(" ")
            for _ in range(rng.randint(0, 2)):
                edit = rng.randrange(3)
                if edit == 0 and words:
                    words[rng.randrange(len(words))] = rng.choice(vocab)
                elif edit == 1:
                    words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
                elif words:
                    del words[rng.randrange(len(words))]
            text = rng.choice([" ", "  ", ", "]).join(words)
            texts.append(text.upper() if rng.random() < 0.2 else text)
        elif roll < 0.43:
            texts.append(rng.choice(["", "...", "—"]))
        else:
            texts.append(" ".join(rng.sample(vocab, rng.randint(1, 16))))
    return texts


def _as_tuples(dropped):
    return [(d.index, d.duplicate_of, d.similarity) for d in dropped]


@pytest.mark.parametrize("chunk_size", [1, 3, 4096])
def test_tokenize_matches_word_set(chunk_size):
    texts = TRICKY_TEXTS * 3
    tokenized = tokenize(texts, chunk_size=chunk_size)
    vocabulary = tokenized.tokens()
    for i, text in enumerate(texts):
        ids = tokenized.ids[tokenized.offsets[i]:tokenized.offsets[i + 1]]
        assert {vocabulary[k] for k in ids} == {w.encode() for w in word_set(text)}
    assert len(set(vocabulary)) == len(vocabulary)  # one id per distinct token
    assert tokenized.hashes.tolist() == [token_hash(t) for t in vocabulary]


def test_tokenize_keeps_ids_exact_while_the_table_grows():
    rng = random.Random(5)
    words = list({"".join(rng.choices("abcdefghij", k=rng.randint(1, 20)))
                  for _ in range(20_000)})
    texts = [" ".join(rng.choices(words, k=12)) for _ in range(3_000)]
    tokenized = tokenize(texts, chunk_size=200)
    vocabulary = tokenized.tokens()
    assert len(vocabulary) == len({w for t in texts for w in t.split()})
    for i in range(0, len(texts), 97):
        ids = tokenized.ids[tokenized.offsets[i]:tokenized.offsets[i + 1]]
        assert [vocabulary[k].decode() for k in ids] == texts[i].split()


def test_token_sets_are_sorted_distinct_and_complete():
    sets = TokenSets.from_texts(TRICKY_TEXTS)
    for i, text in enumerate(TRICKY_TEXTS):
        members = sets.values[sets.starts[i]:sets.starts[i] + sets.sizes[i]]
        assert len(members) == len(word_set(text))
        assert np.all(np.diff(members) > 0)


def test_vectorised_signatures_agree_with_the_definition():
    texts = TRICKY_TEXTS + _edited_corpus(1, 200)
    hasher = MinHasher(num_perm=64, seed=9)
    expected = np.array([_direct_signature(hasher, word_set(t)) for t in texts])
    assert np.array_equal(hasher.signatures_of_sets(TokenSets.from_texts(texts)), expected)
    assert np.array_equal(hasher.signatures([word_set(t) for t in texts]), expected)
    assert np.array_equal(hasher.signature(word_set(texts[0])), expected[0])
    arbitrary = frozenset({"not a single word", "ünïcode", ""})
    assert np.array_equal(hasher.signature(arbitrary), _direct_signature(hasher, arbitrary))


def test_candidate_pairs_match_dictionary_buckets():
    rng = np.random.default_rng(3)
    signatures = rng.integers(0, 4, size=(300, 32), dtype=np.uint32)  # many equal bands
    expected = set()
    for band in range(8):
        buckets = defaultdict(list)
        for i in range(len(signatures)):
            buckets[signatures[i, band * 4:(band + 1) * 4].tobytes()].append(i)
        for members in buckets.values():
            expected.update(itertools.combinations(members, 2))
    assert candidate_pairs(signatures, bands=8, rows=4) == expected


def test_band_keys_are_equal_exactly_for_equal_bands():
    minima = np.array([[1, 1, 2], [5, 5, 5], [7, 7, 7], [9, 8, 9]], dtype=np.uint64)
    keys = band_keys(minima, bands=2, rows=2)
    assert keys[0, 0] == keys[0, 1] != keys[0, 2]
    assert keys[1, 0] == keys[1, 2] != keys[1, 1]


def test_exact_jaccard_matches_sets():
    texts = _edited_corpus(2, 120) + TRICKY_TEXTS
    sets = TokenSets.from_texts(texts)
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, len(texts), (2, 500))
    expected = [jaccard(word_set(texts[i]), word_set(texts[j])) for i, j in
                zip(left, right, strict=True)]
    assert exact_jaccard(sets, left, right).tolist() == expected


def test_similar_pairs_find_planted_near_duplicates():
    rng = random.Random(11)
    base = [" ".join(f"t{rng.randrange(10_000)}" for _ in range(20)) for _ in range(500)]
    planted = {}
    texts = list(base)
    for source in range(0, 500, 5):
        words = base[source].split()
        words[3] = "replaced"  # one of 20 words changed: Jaccard 19/21 > 0.9
        planted[len(texts)] = source
        texts.append(" ".join(words))
    found = similar_pairs(texts, threshold=0.9)
    pairs = set(zip(found.left.tolist(), found.right.tolist(), strict=True))
    assert all((source, copy) in pairs for copy, source in planted.items())
    assert np.all(found.similarity >= 0.9)
    dropped = {d.index: d.duplicate_of for d in near_duplicates(texts)}
    assert dropped == planted


def test_copy_of_a_dropped_item_follows_its_kept_match():
    base = " ".join(f"word{i}" for i in range(30))
    near = base + " extra"
    texts = [base, near, near.upper(), base]
    assert _as_tuples(near_duplicates(texts)) == [(1, 0, 30 / 31), (2, 0, 30 / 31),
                                                   (3, 0, 1.0)]


def test_copy_of_a_dropped_item_can_follow_a_later_kept_item():
    base = " ".join(f"word{i}" for i in range(26))
    texts = [base + " a1 a2",  # kept
             base,  # 26/28 with text 0: dropped
             base + " c1",  # 26/29 < 0.9 with text 0, so kept; 26/27 with text 1
             base.upper()]  # same set as text 1: its best kept match is text 2
    expected = [(1, 0, 26 / 28), (3, 2, 26 / 27)]
    assert _reference_near_duplicates(texts, 0.9) == expected
    assert _as_tuples(near_duplicates(texts)) == expected


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("threshold", "bands", "rows"),
                         [(0.9, 16, 8), (0.7, 32, 4), (0.5, 64, 2), (1.0, 16, 8), (0.0, 4, 2)])
def test_near_duplicates_match_the_plain_algorithm(seed, threshold, bands, rows):
    texts = _edited_corpus(seed, 250)
    expected = _reference_near_duplicates(texts, threshold, bands=bands, rows=rows)
    assert _as_tuples(near_duplicates(texts, threshold, 128, bands, rows)) == expected


def test_small_internal_batches_give_the_same_decisions(monkeypatch):
    texts = _edited_corpus(42, 300)
    expected = _reference_near_duplicates(texts, 0.7, bands=32, rows=4)
    monkeypatch.setattr(lsh, "_PREFIX_WIDTH_CAP", 1)  # most sets skip the prefix filter
    monkeypatch.setattr(lsh, "_PAIR_BATCH", 3)
    monkeypatch.setattr(token_sets, "_COMPARE_BUDGET", 5)
    monkeypatch.setattr(shingles, "_CHUNK_TEXTS", 7)
    monkeypatch.setattr(token_sets, "_SIGNATURE_BLOCK", 4)
    assert _as_tuples(near_duplicates(texts, 0.7, 128, 32, 4)) == expected


def test_threshold_above_one_drops_nothing():
    assert near_duplicates(["same words", "same words"], threshold=1.01) == []
