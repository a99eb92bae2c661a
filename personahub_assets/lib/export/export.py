"""Dataset export: JSONL and Parquet files written atomically (temp file, then rename)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from personahub_assets.lib.common.faults import fault_point

#: Columns of the PersonaHub release, in front of our own columns.
RELEASE_FIELDS = ("input persona", "synthesized text", "description")


def release_rows(samples: Sequence[Mapping[str, Any]], description: str) -> list[dict[str, Any]]:
    """Samples in the release shape plus every column we keep."""
    return [{"input persona": s["persona"],
             "synthesized text": s["json_value"] or s["text"],
             "description": description,
             **s} for s in samples]


def release_schema(base: pa.Schema, with_math: bool) -> pa.Schema:
    """The export schema: release fields, then the table's columns (and the math verdict), so
    every batch's file of a domain has the same types and the folder loads as one dataset."""
    fields = [pa.field(name, pa.string()) for name in RELEASE_FIELDS] + list(base)
    if with_math:
        fields += [pa.field("verified_answer", pa.string()),
                   pa.field("answer_votes", pa.int32()), pa.field("verified", pa.bool_())]
    return pa.schema(fields)


def write_dataset(rows: Sequence[Mapping[str, Any]], directory: Path, stem: str,
                  schema: pa.Schema | None = None) -> dict[str, Path]:
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
    if schema is not None:
        table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows],
                                     schema=schema)
    else:
        table = pa.Table.from_pylist(list(rows)) if rows else pa.table({})
    pq.write_table(table, tmp_parquet)
    os.replace(tmp_parquet, paths["parquet"])
    return paths


def count_jsonl(path: Path) -> int:
    """Number of JSON lines in a file; raises on a line that does not parse."""
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if json.loads(line) is not None)


def remove_dataset_files(directory: Path, stem: str) -> None:
    """Remove ``<stem>.jsonl`` and ``<stem>.parquet`` (a batch that now exports nothing)."""
    for suffix in (".jsonl", ".parquet"):
        (directory / f"{stem}{suffix}").unlink(missing_ok=True)


def push_to_hub(directory: Path, repo_id: str, token: str) -> str:
    """Upload a domain's folder of Parquet files to the Hugging Face Hub as a private
    dataset repository."""
    from datasets import load_dataset

    files = sorted(str(p) for p in directory.glob("*.parquet"))
    load_dataset("parquet", data_files=files, split="train").push_to_hub(
        repo_id, token=token, private=True)
    return f"https://huggingface.co/datasets/{repo_id}"
