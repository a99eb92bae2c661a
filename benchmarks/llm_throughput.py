"""LLM throughput: a plain engine loop against the inference resource inside a materialization.

The same N prompts (half Text-to-Persona on the sample corpus, half synthesis) go through
(a) a plain llama-cpp-python loop, (b) the LLMResource one request at a time inside a real
Dagster materialization, and (c) the resource with continuous batching (``n_parallel``).
All three run in this one process, one after another, so the ratios compare like with like.

    python benchmarks/llm_throughput.py [--n 48] [--runs 3] [--backend llamacpp|vllm --model PATH]

Writes benchmarks/results/llm_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dagster import MaterializeResult, asset, materialize

from personahub_assets.lib.synthesis.generation import GenerationRequest
from personahub_assets.prompts import SYNTHESIS_TEMPLATES, text_to_persona
from personahub_assets.resources.backends.llamacpp import MIN_P, TOP_K, packaged_model_path
from personahub_assets.resources.llm import LLMResource

ROOT = Path(__file__).resolve().parents[1]
PERSONAS = ["A night-shift nurse in a children's hospital in Leeds.",
            "A civil engineer who inspects railway bridges in the Alps.",
            "A high-school chemistry teacher who coaches the robotics club.",
            "A sommelier who runs blind tastings at a wine bar in Lisbon."]


def build_requests(n: int) -> list[GenerationRequest]:
    """N/2 persona-extraction and N/2 synthesis requests, fixed seeds."""
    docs = [json.loads(line) for line in
            (ROOT / "data/sample/web_documents.jsonl").read_text().splitlines()]
    t2p = text_to_persona.build("read")
    out = [t2p.request({"text": docs[i % len(docs)]["text"][:800]}, seed=i)
           for i in range(n // 2)]
    domains = ["math", "instruction", "knowledge", "reasoning"]
    for i in range(n - n // 2):
        template = SYNTHESIS_TEMPLATES[domains[i % len(domains)]]
        out.append(template.request({"persona": PERSONAS[i % len(PERSONAS)] + f" (#{i})"},
                                    seed=1000 + i))
    return out


def raw_llamacpp(requests, model_path: str, n_ctx: int) -> tuple[int, float]:
    """Plain loop over llama-cpp-python's high-level API."""
    from llama_cpp import Llama

    # Every core, as the resource uses (llama-cpp-python's own default is half of them).
    llm = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=os.cpu_count(), verbose=False)
    llm.create_completion("warm up", max_tokens=1)
    start, tokens = time.perf_counter(), 0
    for r in requests:
        out = llm.create_completion(r.completion_prompt, max_tokens=r.max_tokens,
                                    temperature=r.temperature, top_p=r.top_p, top_k=TOP_K,
                                    min_p=MIN_P, seed=r.seed, stop=list(r.stop))
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - start


def raw_vllm(requests, model: str) -> tuple[int, float]:
    """One plain ``vllm.LLM.generate`` call over all prompts."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=model, enable_prefix_caching=True)
    params = [SamplingParams(max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p,
                             seed=r.seed, stop=list(r.stop)) for r in requests]
    llm.generate(["warm up"], SamplingParams(max_tokens=1), use_tqdm=False)
    start = time.perf_counter()
    outs = llm.generate([r.completion_prompt for r in requests], params, use_tqdm=False)
    return sum(len(o.outputs[0].token_ids) for o in outs), time.perf_counter() - start


def pipeline(requests, llm: LLMResource) -> dict[str, float]:
    """The resource inside a real materialization; times the generate call and the run."""
    measured: dict[str, float] = {}

    @asset
    def throughput_probe(llm: LLMResource) -> MaterializeResult:
        start = time.perf_counter()
        results = llm.generate(requests, label="benchmark")
        measured["seconds"] = time.perf_counter() - start
        measured["tokens"] = sum(r.completion_tokens for r in results)
        measured["errors"] = sum(r.error is not None for r in results)
        return MaterializeResult(metadata={"tokens": measured["tokens"]})

    # Load the model outside the timed part, as the raw loop does.
    llm.generate(requests[:1], label="warm up")
    start = time.perf_counter()
    assert materialize([throughput_probe], resources={"llm": llm}).success
    measured["materialization_seconds"] = time.perf_counter() - start
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--backend", choices=["llamacpp", "vllm"], default="llamacpp")
    parser.add_argument("--model", default="")
    parser.add_argument("--n-parallel", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="repeats; figures are medians")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/llm_throughput.json"))
    args = parser.parse_args()
    requests = build_requests(args.n)
    n_ctx = 2048
    load_at_start = os.getloadavg()
    runs = []
    for run in range(args.runs):
        print(f"[llm_throughput] run {run + 1} of {args.runs}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            if args.backend == "llamacpp":
                model = args.model or packaged_model_path()
                raw_tokens, raw_s = raw_llamacpp(requests, model, n_ctx)
                serial = pipeline(requests, LLMResource(model=model, n_parallel=1,
                                                        cache_path=f"{tmp}/serial.duckdb"))
                batched = pipeline(requests, LLMResource(model=model,
                                                         n_parallel=args.n_parallel,
                                                         cache_path=f"{tmp}/batched.duckdb"))
            else:
                model = args.model
                raw_tokens, raw_s = raw_vllm(requests, model)
                serial = pipeline(requests, LLMResource(backend="vllm", model=model,
                                                        cache_path=f"{tmp}/serial.duckdb"))
                batched = serial
        raw_tps = raw_tokens / raw_s
        runs.append({
            "raw_tokens": raw_tokens, "raw_seconds": round(raw_s, 3),
            "raw_tokens_per_s": round(raw_tps, 2),
            "pipeline_tokens": serial["tokens"], "pipeline_seconds": round(serial["seconds"], 3),
            "pipeline_materialization_seconds": round(serial["materialization_seconds"], 3),
            "pipeline_tokens_per_s": round(serial["tokens"] / serial["seconds"], 2),
            "ratio": round(serial["tokens"] / serial["seconds"] / raw_tps, 3),
            "batched_tokens": batched["tokens"], "batched_seconds": round(batched["seconds"], 3),
            "batched_tokens_per_s": round(batched["tokens"] / batched["seconds"], 2),
            "batched_ratio": round(batched["tokens"] / batched["seconds"] / raw_tps, 3),
            # Requests per second: the two paths may stop at different tokens.
            "batched_vs_serial_requests": round(serial["seconds"] / batched["seconds"], 3),
            "errors": serial["errors"] + batched["errors"],
        })

    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    result = {
        "backend": args.backend,
        "model": Path(model).name,
        "n_requests": len(requests),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "batched_n_parallel": args.n_parallel if args.backend == "llamacpp" else None,
        "runs": runs,
        "raw_tokens_per_s": median("raw_tokens_per_s"),
        "pipeline_tokens_per_s": median("pipeline_tokens_per_s"),
        "ratio": median("ratio"),
        "batched_tokens_per_s": median("batched_tokens_per_s"),
        "batched_ratio": median("batched_ratio"),
        "batched_vs_serial_requests": median("batched_vs_serial_requests"),
        "figures": "medians over runs; each run times the three paths one after another",
        "errors": sum(r["errors"] for r in runs),
        "command": "python benchmarks/llm_throughput.py"
                   + (f" --backend {args.backend}" if args.backend != "llamacpp" else "")
                   + (f" --n {args.n}" if args.n != 48 else "")
                   + (f" --runs {args.runs}" if args.runs != 3 else ""),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
