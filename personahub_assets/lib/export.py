"""Dataset export: JSONL and Parquet files written atomically (temp file, then rename)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from personahub_assets.lib.faults import fault_point

#: Columns of the PersonaHub release, in front of our own columns.
RELEASE_FIELDS = ("input persona", "synthesized text", "description")


def release_rows(samples: Sequence[Mapping[str, Any]], description: str) -> list[dict[str, Any]]:
    """Samples in the release shape plus every column we keep."""
    return [{"input persona": s["persona"],
             "synthesized text": s["json_value"] or s["text"],
             "description": description,
             **s} for s in samples]


def write_dataset(rows: Sequence[Mapping[str, Any]], directory: Path, stem: str) -> dict[str, Path]:
    """Write ``rows`` as ``<stem>.jsonl`` and ``<stem>.parquet`` under ``directory``.

    Each file is written to a temporary name and renamed into place, so a reader never sees a
    half-written file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"jsonl": directory / f"{stem}.jsonl", "parquet": directory / f"{stem}.parquet"}
    tmp_jsonl = paths["jsonl"].with_suffix(".jsonl.tmp")
    with tmp_jsonl.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    fault_point("export_before_rename")
    os.replace(tmp_jsonl, paths["jsonl"])
    tmp_parquet = paths["parquet"].with_suffix(".parquet.tmp")
    table = pa.Table.from_pylist(list(rows)) if rows else pa.table({})
    pq.write_table(table, tmp_parquet)
    os.replace(tmp_parquet, paths["parquet"])
    return paths


def count_jsonl(path: Path) -> int:
    """Number of JSON lines in a file; raises on a line that does not parse."""
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if json.loads(line) is not None)


def save_hf_dataset(rows: Sequence[Mapping[str, Any]], directory: Path) -> Path:
    """Save ``rows`` as a Hugging Face ``datasets`` dataset under ``directory`` (load it back
    with ``datasets.load_from_disk``); written beside and swapped in, never half-written."""
    import shutil

    from datasets import Dataset

    target = directory / "hf_dataset"
    tmp = directory / "hf_dataset.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    Dataset.from_list(list(rows)).save_to_disk(str(tmp))
    old = directory / "hf_dataset.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def push_to_hub(directory: Path, repo_id: str, token: str) -> str:
    """Upload a saved dataset to the Hugging Face Hub as a private dataset repository."""
    from datasets import load_from_disk

    load_from_disk(str(directory)).push_to_hub(repo_id, token=token, private=True)
    return f"https://huggingface.co/datasets/{repo_id}"
