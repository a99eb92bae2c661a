"""Dataset cards: the front matter the Hub reads, and a folder that `datasets` loads whole."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personahub_assets.lib.export.cards import (
    DATA_FILES,
    CardFacts,
    front_matter,
    read_front_matter,
    render_card,
    size_category,
    write_card,
)


def _facts(**kw):
    base = dict(domain="math", rows=3, license="cc-by-nc-sa-4.0", languages=["en", "de"],
                generator_models=["llamacpp:gemma-3-270m"], judge_models=["llamacpp:j"],
                templates=["synthesis.math v1"], funnel=[("generated", 5), ("valid", 4),
                                                         ("exported", 3)],
                invalid_reasons={"too_short": 1}, judge_scores={1: 1, 4: 2},
                safety_reasons={"offensive_language": 1},
                verified={"verified math share": 0.5}, diversity={"distinct_2": 0.8},
                columns=["sample_id", "judge_score"])
    base.update(kw)
    return CardFacts(**base)


@pytest.mark.parametrize("n, label", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"),
                                      (250_000, "100K<n<1M"), (2_000_000_000, "n>1B")])
def test_size_category(n, label):
    assert size_category(n) == label


def test_size_category_rejects_negative():
    with pytest.raises(ValueError, match=">= 0"):
        size_category(-1)


def test_front_matter_fields():
    meta = read_front_matter(render_card(_facts()))
    assert meta == front_matter(_facts())
    assert meta["license"] == "cc-by-nc-sa-4.0"
    assert meta["language"] == ["de", "en"]
    assert meta["task_categories"] == ["text-generation", "question-answering"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [{"config_name": "default",
                                "data_files": [{"split": "train", "path": DATA_FILES}]}]


def test_custom_domain_is_text_generation_and_license_is_as_configured():
    meta = front_matter(_facts(domain="recipes", license="apache-2.0", languages=[]))
    assert meta["task_categories"] == ["text-generation"]
    assert meta["license"] == "apache-2.0"
    assert meta["language"] == ["en"]


def test_body_reports_the_figures():
    card = render_card(_facts(min_judge_score=3))
    for needle in ("| generated | 5 |", "| exported | 3 |", "| too_short | 1 |",
                   "mean score is 3.00", "samples under 3 were left out",
                   "| offensive_language | 1 |", "| verified math share | 0.5 |",
                   "| distinct_2 | 0.8 |", "`judge_score`", "## Known limits",
                   "synthesis.math v1", "llamacpp:gemma-3-270m"):
        assert needle in card, needle


def test_front_matter_errors_have_reasons():
    with pytest.raises(ValueError, match="no front matter"):
        read_front_matter("# title")
    with pytest.raises(ValueError, match="not closed"):
        read_front_matter("---\nlicense: x\n")


def test_load_dataset_reads_every_row_of_every_batch_file(tmp_path):
    from datasets import load_dataset

    folder = tmp_path / "math"
    folder.mkdir()
    rows = [{"input persona": f"p{i}", "synthesized text": f"t{i}", "judge_score": i % 5 + 1,
             "constraints": json.dumps([])} for i in range(7)]
    pq.write_table(pa.Table.from_pylist(rows[:4]), folder / "batch-a.parquet")
    pq.write_table(pa.Table.from_pylist(rows[4:]), folder / "batch-b.parquet")
    # The JSON Lines twins and a saved dataset beside them must not be read twice.
    (folder / "batch-a.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:4]) + "\n")
    (folder / "batch-b.jsonl").write_text("\n".join(json.dumps(r) for r in rows[4:]) + "\n")
    write_card(folder, render_card(_facts(rows=7)))
    ds = load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 7
    assert sorted(ds["input persona"]) == sorted(r["input persona"] for r in rows)
