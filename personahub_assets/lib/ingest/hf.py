"""Readers of Hugging Face datasets: by hub name (``hf:NAME`` with optional
``?config=...&split=...``, streamed) or saved to disk (a folder written by
``Dataset.save_to_disk``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from personahub_assets.lib.ingest.records import (
    PREVIEW_CHARS,
    SourceRecord,
    SourceRejection,
    other_fields,
)


def is_saved_dataset(spec: str) -> bool:
    """True for a folder written by ``datasets.Dataset.save_to_disk``."""
    path = Path(spec)
    return path.is_dir() and (path / "dataset_info.json").exists() and (
        path / "state.json").exists()


def hf_source_name(spec: str) -> str:
    """``hf:NAME[/CONFIG]/SPLIT``: the ``source`` that the records of a dataset carry."""
    name, config, split = parse_hf_spec(spec)
    return f"hf:{name}" + (f"/{config}" if config else "") + f"/{split}"


def parse_hf_spec(spec: str) -> tuple[str, str | None, str]:
    """``hf:NAME?config=C&split=S`` -> (NAME, C or None, S or 'train')."""
    name, _, query = spec[3:].partition("?")
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(params) - {"config", "split"}
    if not name or unknown:
        raise ValueError(f"bad Hugging Face source {spec!r}: use hf:NAME?config=C&split=S")
    return name, params.get("config"), params.get("split", "train")


def read_hf_dataset(spec: str, text_field: str, url_field: str, start: int = 0,
                    stop: int | None = None):
    """Stream a Hugging Face dataset (by hub name, or a local folder of data files); a slice
    ``[start, stop)`` skips to its first row and stops after its last."""
    from datasets import load_dataset

    name, config, split = parse_hf_spec(spec)
    dataset = load_dataset(name, config, split=split, streaming=True)
    if start:
        dataset = dataset.skip(start)
    if stop is not None:
        dataset = dataset.take(max(stop - start, 0))
    source = hf_source_name(spec)
    for record_no, row in enumerate(dataset, start=start):
        if text_field not in row:
            yield SourceRejection(source, record_no, f"missing_field:{text_field}",
                                  str(row)[:PREVIEW_CHARS], f"row {record_no}")
            continue
        url = row.get(url_field)
        yield SourceRecord(source, record_no, str(url) if url is not None else None,
                           row[text_field], fields=other_fields(row, text_field))


def read_saved_dataset(spec: str, text_field: str, url_field: str):
    """A dataset saved with ``save_to_disk``."""
    from datasets import load_from_disk

    dataset = load_from_disk(spec)
    if text_field not in dataset.column_names:
        raise ValueError(f"{spec} has no column {text_field!r}: {dataset.column_names}")
    source = Path(spec).name
    has_url = url_field in dataset.column_names
    for record_no, row in enumerate(dataset):
        url = row[url_field] if has_url else None
        yield SourceRecord(source, record_no, str(url) if url is not None else None,
                           row[text_field], fields=other_fields(row, text_field))
