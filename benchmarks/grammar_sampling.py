"""Constrained decoding on the batched llama.cpp path: grammar checked after sampling vs first.

The same JSON-schema requests (the npc, tool and persona-attribute templates, fixed seeds) go
through the batched backend twice in this one process: (a) the baseline, with the grammar
first in the sampling chain, so every step runs it over the whole vocabulary; (b) the default,
which draws from the unconstrained chain and runs the grammar over the vocabulary only when
the drawn token breaks it. Both must give schema-valid JSON; the figure is the ratio of
requests per second, median over runs.

    python -m benchmarks.grammar_sampling [--n 24] [--runs 3]

Writes benchmarks/results/grammar_sampling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jsonschema

from benchmarks.llm_throughput import PERSONAS
from personahub_assets.prompts import SYNTHESIS_TEMPLATES, persona_attributes
from personahub_assets.prompts.npc import DEFAULT_WORLD
from personahub_assets.resources.backends.llamacpp import load_model, packaged_model_path
from personahub_assets.resources.backends.llamacpp_batched import BatchedLlamaCpp

ROOT = Path(__file__).resolve().parents[1]


def build_requests(n: int):
    templates = [SYNTHESIS_TEMPLATES["npc"], SYNTHESIS_TEMPLATES["tool"],
                 persona_attributes.TEMPLATE]
    out = []
    for i in range(n):
        template = templates[i % len(templates)]
        variables = {"persona": PERSONAS[i % len(PERSONAS)] + f" (#{i})", "world": DEFAULT_WORLD}
        out.append(template.request(variables, seed=2000 + i))
    return out


def run(llm, requests, grammar_first: bool, n_parallel: int) -> dict:
    engine = BatchedLlamaCpp(llm, n_parallel=n_parallel, n_ctx_per_seq=2048,
                             n_threads=os.cpu_count() or 1, grammar_first=grammar_first)
    try:
        engine.generate(requests[:1])  # warm up: prompt cache and allocations
        engine.grammar_stats = {"checked": 0, "resampled": 0}
        start = time.perf_counter()
        results = engine.generate(requests)
        seconds = time.perf_counter() - start
    finally:
        engine.close()
    valid = 0
    for request, result in zip(requests, results, strict=True):
        try:
            jsonschema.validate(json.loads(result.text), request.json_schema)
            valid += 1
        except (ValueError, jsonschema.ValidationError):
            pass
    stats = engine.grammar_stats
    return {"seconds": round(seconds, 3), "requests_per_s": round(len(requests) / seconds, 4),
            "tokens": sum(r.completion_tokens for r in results),
            "schema_valid": valid, "truncated": sum(r.finish_reason == "length" for r in results),
            "errors": sum(r.error is not None for r in results),
            "resample_rate": round(stats["resampled"] / stats["checked"], 4)
            if stats["checked"] else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3, help="repeats; figures are medians")
    parser.add_argument("--n-parallel", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/grammar_sampling.json"))
    args = parser.parse_args()
    model = packaged_model_path()
    llm = load_model(model, 2048, os.cpu_count() or 1)
    requests = build_requests(args.n)
    load_at_start = os.getloadavg()
    runs = []
    for i in range(args.runs):
        print(f"[grammar_sampling] run {i + 1} of {args.runs}", file=sys.stderr)
        first = run(llm, requests, True, args.n_parallel)
        after = run(llm, requests, False, args.n_parallel)
        runs.append({"grammar_first": first, "grammar_check": after,
                     "speedup": round(first["seconds"] / after["seconds"], 3)})
    result = {
        "model": Path(model).name, "n_requests": len(requests),
        "templates": ["npc", "tool", "persona_attributes"],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "n_parallel": args.n_parallel, "runs": runs,
        "speedup": statistics.median(r["speedup"] for r in runs),
        "schema_valid_grammar_first": statistics.median(
            r["grammar_first"]["schema_valid"] for r in runs),
        "schema_valid_grammar_check": statistics.median(
            r["grammar_check"]["schema_valid"] for r in runs),
        "figures": "speedup = grammar-first seconds / grammar-check seconds, median over runs",
        "command": "python -m benchmarks.grammar_sampling"
                   + (f" --n {args.n}" if args.n != 24 else "")
                   + (f" --runs {args.runs}" if args.runs != 3 else ""),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
