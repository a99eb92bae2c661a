"""Incremental work: how much ingestion reads when a source is cut into batches.

Writes a corpus of ``--records`` plain-text documents (sentences of the shipped sample corpus,
recombined so every document is distinct), registers it as ``--batches`` batches (slices of
the one file), and materializes ``web_documents`` for every batch in a real Dagster instance.
``records_read_per_record`` is the records ingestion read over the records in the source
(goal 1.0). The baseline, measured in the same run on the same file, is the old layout: each
of the same number of partitions reads the whole source and keeps its share, as the static
hash shards did (it equals the partition count).

    python benchmarks/incremental.py [--records 16000] [--batches 16]

Merges its keys into benchmarks/results/incremental.json (the hub benchmark writes others).
"""

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import describe  # noqa: E402 - after the path set-up

RESULTS = ROOT / "benchmarks" / "results" / "incremental.json"


def write_corpus(path: Path, records: int, seed: int = 7) -> None:
    """Distinct English documents built from the sample corpus's sentences."""
    sample = [json.loads(line)["text"] for line in
              (ROOT / "data" / "sample" / "web_documents.jsonl").read_text().splitlines()]
    sentences = [s.strip() + "." for text in sample for s in text.split(".") if len(s) > 40]
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(records):
            body = " ".join(rng.sample(sentences, 6))
            fh.write(json.dumps({"url": f"https://bench.example/{i}",
                                 "text": f"Report {i}. {body}"}) + "\n")


def measure(records: int, batches: int) -> dict:
    from dagster import AssetKey, instance_for_test, materialize

    from personahub_assets.automation import register_source
    from personahub_assets.definitions import ASSETS
    from personahub_assets.lib.ingest.sources import read_records
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource

    with tempfile.TemporaryDirectory() as tmp, instance_for_test() as instance:
        source = Path(tmp) / "corpus.jsonl"
        write_corpus(source, records)
        wh = WarehouseResource(path=f"{tmp}/w.duckdb")
        resources = {"warehouse": wh, "embeddings": EmbeddingsResource(),
                     "llm": LLMResource(cache_path=f"{tmp}/c.duckdb")}
        keys = [b.key for b in register_source(wh, str(source),
                                               max_records=-(-records // batches))]
        instance.add_dynamic_partitions("batches", keys)
        read = 0
        start = time.perf_counter()
        for key in keys:
            result = materialize(ASSETS, selection=["web_documents"], partition_key=key,
                                 instance=instance, resources=resources)
            assert result.success
            [event] = result.get_asset_materialization_events()
            read += event.materialization.metadata["records_read"].value
        batched_seconds = time.perf_counter() - start
        kept = wh.scalar("SELECT count(*) FROM documents")
        assert instance.get_materialized_partitions(AssetKey("web_documents")) == set(keys)

        # Baseline: every partition reads the whole source and keeps its share.
        start = time.perf_counter()
        baseline_read = 0
        for part in range(len(keys)):
            for rec in read_records(str(source)):
                baseline_read += 1
                _ = rec.record_no % len(keys) == part
        baseline_read_seconds = time.perf_counter() - start
    return {
        "records_in_source": records,
        "batches": len(keys),
        "records_read": read,
        "records_read_per_record": round(read / records, 4),
        "documents_kept": kept,
        "ingestion_seconds": round(batched_seconds, 2),
        "baseline": "each of the same number of partitions reads the whole source "
                    "(the static hash shards of the previous version)",
        "baseline_records_read_per_record": round(baseline_read / records, 4),
        "baseline_read_seconds_only": round(baseline_read_seconds, 2),
        "read_ratio_vs_baseline": round(read / baseline_read, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=16_000)
    parser.add_argument("--batches", type=int, default=16)
    args = parser.parse_args()
    figures = measure(args.records, args.batches)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["ingestion"] = {**figures, "machine": describe(),
                            "command": "python benchmarks/incremental.py "
                                       f"--records {args.records} --batches {args.batches}"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
