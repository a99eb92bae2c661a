"""Documents an earlier batch already kept: rejected as exact duplicates that name the batch
and document they repeat."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from personahub_assets.lib.ingest.records import PREVIEW_CHARS


def split_earlier_duplicates(kept: list[dict[str, Any]],
                             first: Mapping[str, tuple[str, str]]
                             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(new documents, rejections of the ones whose content hash an earlier batch kept).

    ``first`` maps a content hash to the (batch, doc_id) that kept it first.
    """
    fresh, duplicates = [], []
    for d in kept:
        if d["content_hash"] in first:
            b, other = first[d["content_hash"]]
            duplicates.append({"batch": d["batch"], "source": d["source"],
                               "record_no": d["record_no"], "url": d["url"],
                               "reason": f"exact_duplicate_of:{b}/{other}",
                               "raw_preview": d["text"][:PREVIEW_CHARS]})
        else:
            fresh.append(d)
    return fresh, duplicates
