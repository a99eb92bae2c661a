"""What curation loses of released persona sets in many languages, and what it still catches.

Inputs (public, committed under ``personahub_assets_tests/data``):
* the 5,000 personas of the PersonaHub release's ``tool.jsonl`` sample (mostly English, with
  Chinese, Russian, German, Spanish, Thai... and first-person personas);
* 1,039 XPersona profiles (first-person, in English, French, Indonesian, Italian, Japanese,
  Korean and Chinese), one per persona.

To each set, planted duplicates are appended after the originals: for a fixed sample of
originals, an exact copy, a normalization variant (case, spacing, final punctuation, full
width) and a near copy (one word left out, or one character where words are not spaced,
from personas long enough for a one-token change to stay a near duplicate: 12 word units).

The personas go through the curation stages in order, as ``imported_personas`` and
``persona_hub`` apply them: import validation, hub filters, exact duplicates (persona ID),
MinHash (Jaccard >= 0.9), then embedding similarity (cosine >= 0.9, static encoder) only for
the texts the encoder sees (coverage >= 0.8). An original that does not reach the hub is
*lost*; a planted copy that reaches it is *missed*.

Usage: ``python -m benchmarks.personas_multilingual`` writes
``benchmarks/results/personas_multilingual.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.curation.coverage import DEFAULT_MIN_COVERAGE, encoder_coverage
from personahub_assets.lib.curation.embedding_dedup import embedding_near_duplicates_where_seen
from personahub_assets.lib.curation.encoders import StaticEncoder
from personahub_assets.lib.curation.minhash import near_duplicates
from personahub_assets.lib.ingest.language import persona_language, word_units
from personahub_assets.lib.personas.validation import hub_filter_reason, validate_persona

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "personahub_assets_tests" / "data"
RESULT = ROOT / "benchmarks" / "results" / "personas_multilingual.json"
_UNSPACED = {"zh", "ja", "th", "lo", "km", "my"}


def load_sets() -> dict[str, list[str]]:
    """The released persona sets, by name."""
    with gzip.open(DATA / "personahub_tool_personas.jsonl.gz", "rt", encoding="utf-8") as fh:
        personahub = [json.loads(line)["persona"] for line in fh]
    xpersona = [json.loads(line)["persona"]
                for line in (DATA / "xpersona_profiles.jsonl").read_text("utf-8").splitlines()]
    return {"personahub_tool_5000": personahub, "xpersona_profiles": xpersona}


def normalization_variant(text: str) -> str:
    """The same persona written slightly differently: case, spacing, final stop, width."""
    text = unicodedata.normalize("NFKC", text)
    text = text[0].swapcase() + text[1:] if text[:1].isalpha() else text
    text = text.rstrip(".。") if text.endswith((".", "。")) else text + "."
    return "  ".join(text.split(" ", 1)) if " " in text else text.replace("，", ",", 1)


def near_variant(text: str, language: str, rng: random.Random) -> str | None:
    """One word (or one character, where words are not spaced) left out, or None when the
    persona is too short for that to stay a near duplicate."""
    if word_units(text) < 12:
        return None
    if language in _UNSPACED:
        cut = rng.randrange(1, len(text) - 1)
        return text[:cut] + text[cut + 1:]
    words = text.split()
    cut = rng.randrange(1, len(words))
    return " ".join(words[:cut] + words[cut + 1:])


def curate(texts: list[str], encoder) -> tuple[list[str | None], dict[int, tuple]]:
    """Why each text does not reach the hub (None when it does), and for duplicates,
    ``index -> (stage, duplicate_of, similarity)``."""
    fate: list[str | None] = [None] * len(texts)
    merged: dict[int, tuple] = {}
    first: dict[str, int] = {}
    survivors = []
    for i, raw in enumerate(texts):
        persona, reason = validate_persona(raw, "stop")
        if persona is None:
            fate[i] = f"import:{reason}"
            continue
        reason = hub_filter_reason(persona)
        if reason:
            fate[i] = f"filter:{reason}"
            continue
        pid = persona_id(persona)
        if pid in first:
            fate[i] = "exact"
            merged[i] = ("exact", first[pid], 1.0)
            continue
        first[pid] = i
        survivors.append(i)
    for d in near_duplicates([texts[i] for i in survivors], 0.9):
        i, j = survivors[d.index], survivors[d.duplicate_of]
        fate[i] = "minhash"
        merged[i] = ("minhash", j, round(d.similarity, 4))
    after = [i for i in survivors if fate[i] is None]
    batch = [texts[i] for i in after]
    split = embedding_near_duplicates_where_seen(
        encoder.encode(batch), encoder_coverage(encoder, batch), 0.9, DEFAULT_MIN_COVERAGE,
        assume_normalized=True)
    for d in split.duplicates:
        i, j = after[d.index], after[d.duplicate_of]
        fate[i] = "embedding"
        merged[i] = ("embedding", j, round(d.similarity, 4))
    return fate, merged


def run_set(name: str, originals: list[str], encoder, sample: int, seed: int) -> dict:
    rng = random.Random(seed)
    languages = [persona_language(text) for text in originals]
    planted: list[tuple[int, str, str]] = []  # (original, kind, text)
    for i in sorted(rng.sample(range(len(originals)), min(sample, len(originals)))):
        planted.append((i, "exact", originals[i]))
        planted.append((i, "normalization", normalization_variant(originals[i])))
        near = near_variant(originals[i], languages[i], rng)
        if near is not None:
            planted.append((i, "near", near))
    texts = originals + [text for _, _, text in planted]
    started = time.perf_counter()
    fate, merged = curate(texts, encoder)
    seconds = time.perf_counter() - started

    per_language: dict[str, dict] = defaultdict(lambda: {"in": 0, "lost": 0, "reasons": Counter(),
                                                         "planted": 0, "caught": 0})
    lost_examples = []
    for i, text in enumerate(originals):
        row = per_language[languages[i]]
        row["in"] += 1
        if fate[i] is not None:
            row["lost"] += 1
            row["reasons"][fate[i]] += 1
            detail = merged.get(i)
            lost_examples.append({"language": languages[i], "reason": fate[i], "persona": text,
                                  **({"duplicate_of": texts[detail[1]],
                                      "similarity": detail[2]} if detail else {})})
    missed = []
    by_kind = Counter()
    caught_kind = Counter()
    of_lost = 0
    for k, (i, kind, text) in enumerate(planted):
        if fate[i] is not None and fate[i] not in {"exact", "minhash", "embedding"}:
            of_lost += 1  # its original never reached the hub: the copy duplicates nothing
            continue
        row = per_language[languages[i]]
        row["planted"] += 1
        by_kind[kind] += 1
        if fate[len(originals) + k] is not None:
            row["caught"] += 1
            caught_kind[kind] += 1
        else:
            missed.append({"language": languages[i], "kind": kind, "original": originals[i],
                           "copy": text})
    merged_originals = [e for e in lost_examples if "duplicate_of" in e]
    return {
        "personas": len(originals),
        "lost": sum(f is not None for f in fate[:len(originals)]),
        "lost_by_reason": dict(Counter(f for f in fate[:len(originals)] if f)),
        "originals_merged_into_other_originals": len(merged_originals),
        "planted_duplicates": len(planted) - of_lost,
        "planted_copies_of_filtered_originals": of_lost,
        "planted_caught": sum(caught_kind.values()),
        "planted_by_kind": {kind: {"planted": by_kind[kind], "caught": caught_kind[kind]}
                            for kind in sorted(by_kind)},
        "per_language": {
            language: {"in": row["in"], "lost": row["lost"],
                       "drop_rate": round(row["lost"] / row["in"], 4) if row["in"] else 0.0,
                       "reasons": dict(row["reasons"]), "planted": row["planted"],
                       "caught": row["caught"]}
            for language, row in sorted(per_language.items(), key=lambda kv: -kv[1]["in"])},
        "lost_examples": lost_examples,
        "missed_planted": missed,
        "seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=400,
                        help="originals per set that get planted copies")
    parser.add_argument("--output", default=str(RESULT))
    args = parser.parse_args(argv)
    encoder = StaticEncoder(use_multiprocessing=False)
    result = {"stages": "import validation, hub filters, exact, MinHash 0.9, embedding 0.9 "
                        f"(static encoder, coverage >= {DEFAULT_MIN_COVERAGE})"}
    for seed, (name, originals) in enumerate(load_sets().items()):
        result[name] = run_set(name, originals, encoder, args.sample, seed)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for name in load_sets():
        summary = {k: v for k, v in result[name].items()
                   if k not in {"lost_examples", "missed_planted", "per_language"}}
        print(name, json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
