"""Dataset cards: the ``README.md`` of each export folder, in the form the Hugging Face Hub reads.

The front matter (YAML between ``---`` lines) carries the license, task categories, size
category, languages and a ``configs`` entry whose ``data_files`` glob the folder's Parquet
files, so ``datasets.load_dataset(folder)`` loads every exported row and nothing else. The
body says how the data was made and what passed which filter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: The glob the card's config reads: every per-batch Parquet file of the folder.
DATA_FILES = "*.parquet"
#: Hub task categories per built-in domain; other domains are text generation.
TASK_CATEGORIES = {
    "math": ["text-generation", "question-answering"],
    "reasoning": ["text-generation", "question-answering"],
    "instruction": ["text-generation"],
    "knowledge": ["text-generation"],
    "npc": ["text-generation"],
    "tool": ["text-generation"],
}
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
          (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"),
          (1_000_000_000, "100M<n<1B"))

#: What every card says the data cannot promise.
KNOWN_LIMITS = (
    "Samples are written by a language model from the viewpoint of synthetic personas; they "
    "may contain inaccuracies, invented facts, unsafe content and the biases of the model and "
    "of the web text the personas came from.",
    "\"Valid\" means well formed by deterministic rules (length, format, schema, no refusal), "
    "not correct or useful.",
    "The judge is a language model grading against a short rubric; its scores are as good as "
    "that model. A small model separates empty or copied samples far better than subtly wrong "
    "ones.",
    "The safety classifier is a word n-gram model trained on English comments: it catches "
    "insults and obscenity, not subtle harm, and sees little outside English.",
    "Math answers are verified by agreement of independent solutions from the same model, not "
    "by a proof; agreement on a wrong answer counts as verified.",
)


def size_category(n: int) -> str:
    """The Hub's size category for ``n`` rows."""
    if n < 0:
        raise ValueError(f"row count must be >= 0, got {n}")
    for bound, label in _SIZES:
        if n < bound:
            return label
    return "n>1B"


@dataclass
class CardFacts:
    """Everything a card reports about one domain's export."""

    domain: str
    rows: int
    license: str
    languages: Sequence[str] = ("en",)
    generator_models: Sequence[str] = ()
    judge_models: Sequence[str] = ()
    templates: Sequence[str] = ()
    funnel: Sequence[tuple[str, int]] = ()
    invalid_reasons: Mapping[str, int] = field(default_factory=dict)
    judge_scores: Mapping[int, int] = field(default_factory=dict)
    min_judge_score: int = 0
    safety_reasons: Mapping[str, int] = field(default_factory=dict)
    verified: Mapping[str, Any] = field(default_factory=dict)
    diversity: Mapping[str, Any] = field(default_factory=dict)
    persona_domains: Mapping[str, int] = field(default_factory=dict)
    selection: str = ""
    columns: Sequence[str] = ()


def front_matter(facts: CardFacts) -> dict[str, Any]:
    """The YAML header the Hub reads."""
    return {
        "license": facts.license,
        "language": sorted(set(facts.languages)) or ["en"],
        "task_categories": TASK_CATEGORIES.get(facts.domain, ["text-generation"]),
        "size_categories": [size_category(facts.rows)],
        "tags": ["synthetic", "personas", "personahub", facts.domain],
        "pretty_name": f"Persona-driven {facts.domain} samples",
        "configs": [{"config_name": "default",
                     "data_files": [{"split": "train", "path": DATA_FILES}]}],
    }


def _table(rows: Sequence[Sequence[Any]], head: Sequence[str]) -> str:
    if not rows:
        return "_none_\n"
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def render_card(facts: CardFacts) -> str:
    """The whole ``README.md``: front matter, then the body."""
    header = yaml.safe_dump(front_matter(facts), sort_keys=False, allow_unicode=True)
    total = sum(facts.judge_scores.values())
    mean = (sum(int(k) * v for k, v in facts.judge_scores.items()) / total) if total else None
    parts = [
        f"---\n{header}---\n",
        f"# Persona-driven {facts.domain} samples\n",
        f"{facts.rows} rows of the `{facts.domain}` domain, each written by a language model "
        "from the viewpoint of one persona (the method of *Scaling Synthetic Data Creation "
        "with 1,000,000,000 Personas*, arXiv 2406.20094). Load them with "
        "`datasets.load_dataset(\"<this folder>\")`; the Parquet and JSON Lines files hold "
        "the same rows.\n",
        "## How it was made\n",
        "Web documents were cleaned and deduplicated; a model wrote one persona per document "
        "(Text-to-Persona) and further personas related to them (Persona-to-Persona); "
        "imported persona sets joined them; near-duplicate personas were removed (MinHash, "
        "then embeddings). Each kept persona was given to the domain's prompt template.\n",
        _table([[m] for m in facts.generator_models], ["generator model"]),
        _table([[t] for t in facts.templates], ["template (name v version)"]),
        *([f"Persona selection: `{facts.selection}`\n"] if facts.selection else []),
        "## Counts through the filters\n",
        _table([[stage, n] for stage, n in facts.funnel], ["stage", "samples"]),
        "## Validity\n",
        "Deterministic rules (length, format, JSON schema, refusals, copies of the persona) "
        "decide validity; only valid samples are exported. Reasons samples were invalid:\n",
        _table(sorted(facts.invalid_reasons.items(), key=lambda kv: -kv[1]),
               ["reason", "samples"]),
        "## Judge\n",
        ("Every valid sample was scored from 1 (useless) to 5 (excellent) against the "
         f"domain's rubric by {', '.join(facts.judge_models) or 'no judge'}"
         + (f"; the mean score is {mean:.2f}" if mean is not None else "")
         + (f"; samples under {facts.min_judge_score} were left out"
            if facts.min_judge_score else "; no minimum score was required") + ".\n"),
        _table([[k, facts.judge_scores[k]] for k in sorted(facts.judge_scores, key=int)],
               ["judge_score", "samples"]),
        "## Safety\n",
        "Each sample was screened by an offline offensive-language classifier "
        "(alt-profanity-check) and by the judge's unsafe flag; flagged samples are not in "
        "this export. Flagged samples by reason:\n",
        _table(sorted(facts.safety_reasons.items()), ["safety_reason", "samples"]),
        "## Verification\n",
        _table([[k, v] for k, v in facts.verified.items()], ["figure", "value"]),
        "## Diversity\n",
        _table([[k, v] for k, v in facts.diversity.items()], ["figure", "value"]),
        *(["Personas behind the rows, by persona domain:\n",
           _table(sorted(facts.persona_domains.items(), key=lambda kv: -kv[1]),
                  ["persona domain", "rows"])] if facts.persona_domains else []),
        "## Columns\n",
        ("`input persona`, `synthesized text` and `description` follow the PersonaHub "
         "release; the other columns are the pipeline's own: "
         + ", ".join(f"`{c}`" for c in facts.columns) + ".\n") if facts.columns else "",
        "## Known limits\n",
        "".join(f"- {limit}\n" for limit in KNOWN_LIMITS),
    ]
    return "\n".join(p for p in parts if p)


def read_front_matter(text: str) -> dict[str, Any]:
    """The YAML header of a card; raises ``ValueError`` when there is none."""
    if not text.startswith("---\n"):
        raise ValueError("card has no front matter")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ValueError("card front matter is not closed")
    return yaml.safe_load(text[4:end])


def write_card(directory: Path, text: str) -> Path:
    """Write ``README.md`` into ``directory`` atomically (temp file, then rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "README.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def gather_facts(
    query: Callable[[str, Sequence[Any]], list[dict[str, Any]]], domain: str,
    exported: Sequence[Mapping[str, Any]], dropped: Mapping[str, int], license: str,
    min_judge_score: int = 0, columns: Sequence[str] = (),
) -> CardFacts:
    """The facts of a domain's card: ``query(sql, params)`` reads the warehouse (fixed SQL,
    the domain as a parameter); ``exported`` are the rows written, ``dropped`` the valid rows
    left out, by reason."""
    from personahub_assets.lib.quality.diversity import diversity_metadata

    counts = query("SELECT count(*) AS n, count(*) FILTER (WHERE valid) AS valid "
                   "FROM synthetic_samples WHERE domain = ?", [domain])[0]
    invalid = query("SELECT reason, count(*) AS n FROM synthetic_samples WHERE domain = ? "
                    "AND NOT valid GROUP BY reason", [domain])
    made_by = query("SELECT DISTINCT backend || ':' || model AS model, template || ' v' || "
                    "template_version AS template FROM synthetic_samples WHERE domain = ?",
                    [domain])
    scores = query("SELECT judge_score AS score, count(*) AS n FROM sample_quality "
                   "WHERE domain = ? AND judge_score IS NOT NULL GROUP BY judge_score",
                   [domain])
    judges = query("SELECT DISTINCT backend || ':' || model AS model FROM sample_quality "
                   "WHERE domain = ? AND judge_score IS NOT NULL", [domain])
    safety = query("SELECT safety_reason AS reason, count(*) AS n FROM sample_quality "
                   "WHERE domain = ? AND safety_flag GROUP BY safety_reason", [domain])
    funnel = [("generated", int(counts["n"])), ("valid", int(counts["valid"]))]
    funnel += [(f"left out: {reason}", n) for reason, n in sorted(dropped.items())]
    funnel.append(("exported", len(exported)))
    verified: dict[str, Any] = {}
    if exported and domain == "math":
        verified["verified math share (2 of 3 solvers agree)"] = round(
            sum(bool(r.get("verified")) for r in exported) / len(exported), 4)
    if exported and domain == "instruction":
        verified["responses obeying every constraint"] = round(
            sum(bool(r.get("constraints_passed")) for r in exported) / len(exported), 4)
    texts = [str(r.get("synthesized text") or "") for r in exported]
    diversity = diversity_metadata(texts, [str(r.get("input persona") or "") for r in exported])
    languages = sorted({r["persona_language"] for r in exported
                        if isinstance(r.get("persona_language"), str)
                        and len(r["persona_language"]) == 2})
    persona_domains: dict[str, int] = {}
    for r in exported:
        if r.get("persona_domain"):
            persona_domains[r["persona_domain"]] = persona_domains.get(r["persona_domain"], 0) + 1
    return CardFacts(
        domain=domain, rows=len(exported), license=license, languages=languages or ["en"],
        generator_models=sorted({m["model"] for m in made_by}),
        judge_models=[j["model"] for j in judges],
        templates=sorted({m["template"] for m in made_by}), funnel=funnel,
        invalid_reasons={r["reason"]: r["n"] for r in invalid},
        judge_scores={int(s["score"]): s["n"] for s in scores}, min_judge_score=min_judge_score,
        safety_reasons={s["reason"]: s["n"] for s in safety}, verified=verified,
        diversity={k: diversity[k] for k in ("distinct_1", "distinct_2", "near_duplicate_rate",
                                             "mean_output_similarity")},
        persona_domains=persona_domains, columns=columns)


def read_exported(directory: Path) -> list[dict[str, Any]]:
    """Every row of the folder's Parquet files (what ``load_dataset`` on the folder reads)."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in sorted(Path(directory).glob(DATA_FILES)):
        rows += pq.read_table(path).to_pylist()
    return rows
