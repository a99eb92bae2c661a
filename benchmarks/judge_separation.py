"""How well the judge separates planted bad samples from good ones.

Twelve good samples (hand-written, three for each text domain) are judged beside four bad
versions of each: empty, off-topic (another item's sample), a copy of the persona, and the
sample cut to its first third. The figure is the AUC of judge scores, good against bad (0.5 is
chance, 1.0 perfect), per kind of bad sample, and how many bad samples a minimum score of 3
would drop. The baseline, measured in the same run on the same samples, is the pipeline's
deterministic validation (valid = 5, invalid = 1): what the judge adds is what it catches that
the rules do not.

    python benchmarks/judge_separation.py [--backend llamacpp --model PATH]

Writes benchmarks/results/judge_separation.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import describe  # noqa: E402 - after the path set-up

from personahub_assets.lib.personas.validation import BUILTIN_RULES, validate_sample  # noqa: E402
from personahub_assets.lib.quality.judging import (  # noqa: E402
    PLANTED_KINDS,
    judge_sample_text,
    planted_bad,
    read_verdict,
    separation,
)
from personahub_assets.lib.synthesis.generation import seed_for  # noqa: E402
from personahub_assets.prompts import judge  # noqa: E402
from personahub_assets.resources.llm import LLMResource  # noqa: E402

GOOD = [
    ("math", "A school canteen cook who plans lunches for 240 pupils.",
     "Each pupil eats 150 g of rice at lunch. How many kilograms of rice does the canteen "
     "need for 240 pupils over a 5-day week?"),
    ("math", "A cyclist who trains for mountain stages in the Alps.",
     "I climb 1,200 m of height in 48 minutes. At the same rate, how many metres do I climb "
     "in 1 hour and 20 minutes?"),
    ("math", "A florist who makes wedding bouquets to order.",
     "A bouquet needs 7 roses and 12 tulips. Roses cost 2.50 dollars and tulips 1.20 dollars "
     "each. What do the flowers for 9 bouquets cost?"),
    ("reasoning", "A train dispatcher on a single-track line.",
     "Trains A and B leave opposite ends of a single track. The passing loop is closer to "
     "A's station, and B is faster. Which train must wait in the loop, and why?"),
    ("reasoning", "A chess club organiser who runs weekend tournaments.",
     "Four players each play every other player once. Ana won all her games, Ben lost only "
     "to Ana, and Cleo beat Dev. What was Dev's score?"),
    ("reasoning", "A beekeeper who keeps hives on three rooftops.",
     "Hive one is north of hive two, and hive three is south of hive two. A swarm left the "
     "northernmost hive. Which hive did it leave?"),
    ("instruction", "A night-shift nurse who trains new ward staff.",
     "Write a one-page checklist for new nurses starting their first night shift, covering "
     "handover, medication rounds and who to call in an emergency."),
    ("instruction", "A hobby baker who sells sourdough at a village market.",
     "Give me a feeding schedule for a sourdough starter that I only bake with on Saturdays, "
     "and explain how to revive it after a week in the fridge."),
    ("instruction", "A museum volunteer who leads tours for school groups.",
     "Suggest five questions I can ask ten-year-olds during a tour of a Roman coins exhibit "
     "to keep them looking closely at the objects."),
    ("knowledge", "A marine biologist who studies kelp forests.",
     "Kelp forests grow in cold, nutrient-rich coastal water. Their fronds can grow more than "
     "half a metre a day, and they shelter fish, sea urchins and otters."),
    ("knowledge", "A retired railway engineer who restores steam locomotives.",
     "A steam locomotive boils water in a fire-tube boiler; the steam pushes pistons in the "
     "cylinders, and connecting rods turn the driving wheels."),
    ("knowledge", "A soil scientist who advises small farms.",
     "Clay soils hold water and nutrients well but drain slowly, while sandy soils drain fast "
     "and lose nutrients; adding compost improves both."),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="llamacpp")
    parser.add_argument("--model", default="")
    parser.add_argument("--base-url", default="")
    parser.add_argument("--prompt-style", default="completion")
    parser.add_argument("--cache", default="", help="response cache file (default: none)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "judge_separation.json"))
    args = parser.parse_args(argv)
    llm = LLMResource(backend=args.backend, model=args.model, base_url=args.base_url,
                      prompt_style=args.prompt_style, cache_path=args.cache or "unused",
                      use_cache=bool(args.cache))
    items = []  # (label, domain, persona, sample)
    for i, (domain, persona, sample) in enumerate(GOOD):
        items.append(("good", domain, persona, sample))
        unrelated = GOOD[(i + 4) % len(GOOD)][2]
        for kind, text in planted_bad(sample, persona, unrelated).items():
            items.append((kind, domain, persona, text))
    requests = [judge.TEMPLATE.request(
        {"rubric": judge.rubric_for(d), "persona": p, "sample": judge_sample_text(s)},
        seed=seed_for("bench", n)) for n, (_, d, p, s) in enumerate(items)]
    start = time.perf_counter()
    results = llm.generate(requests, label="judge_separation")
    seconds = time.perf_counter() - start
    verdicts = [read_verdict(r.parsed, r.error) for r in results]
    judge_scores: dict[str, list] = {k: [] for k in ("good", *PLANTED_KINDS)}
    rule_scores: dict[str, list] = {k: [] for k in ("good", *PLANTED_KINDS)}
    for (label, domain, persona, sample), verdict in zip(items, verdicts, strict=True):
        judge_scores[label].append(verdict.score)
        valid, _, _ = validate_sample(BUILTIN_RULES[domain], sample, "stop", persona)
        rule_scores[label].append(5 if valid else 1)
    bad = {k: judge_scores[k] for k in PLANTED_KINDS}
    result = {
        "machine": describe(),
        "judge": {"backend": args.backend, "model": llm.model_name,
                  "template": f"{judge.TEMPLATE.name} v{judge.TEMPLATE.version}"},
        "samples": len(items),
        "unscored": sum(v.score is None for v in verdicts),
        "judge_seconds": round(seconds, 2),
        "judge_separation": separation(judge_scores["good"], bad),
        "baseline_rules_separation": separation(rule_scores["good"],
                                                {k: rule_scores[k] for k in PLANTED_KINDS}),
        "examples": [{"label": label, "sample": s[:80], "score": v.score, "reason": v.reason}
                     for (label, _, _, s), v in list(zip(items, verdicts, strict=True))[:10]],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps({k: result[k] for k in ("judge_separation",
                                                         "baseline_rules_separation",
                                                         "unscored", "judge_seconds")},
                                indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
