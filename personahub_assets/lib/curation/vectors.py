"""Unit rows: the form every encoder returns and every vector index searches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
