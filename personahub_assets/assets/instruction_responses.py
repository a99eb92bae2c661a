"""Instruction responses: constraints on each instruction, an answer, and code that checks it."""

import json
from collections import Counter

from dagster import (
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MultiToSingleDimensionPartitionMapping,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import check_result, materialize_result
from personahub_assets.automation import batch_condition
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.synthesis.constraints import draw_constraints, instruction_text, verify
from personahub_assets.lib.synthesis.generation import provenance, seed_for, summarize
from personahub_assets.lib.synthesis.queries import answered_instructions, valid_instructions
from personahub_assets.partitions import batch_partitions
from personahub_assets.prompts import response
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class ResponsesConfig(Config):
    """How instruction samples become verifiable (instruction, response) pairs."""

    max_constraints: int = Field(default=3, description="Constraints per instruction: 1 to "
                                                        "this many, drawn from its seed.")
    min_verified_share: float = Field(default=0.2, description="Below this share of responses "
                                                               "obeying all constraints, the "
                                                               "check warns.")


@asset(
    partitions_def=batch_partitions,
    deps=[AssetDep("synthetic_data", partition_mapping=MultiToSingleDimensionPartitionMapping(
        partition_dimension_name="batch"))],
    automation_condition=batch_condition(),
    group_name="quality",
    kinds={"duckdb", "llm", SETTINGS.llm_backend},
    check_specs=[
        AssetCheckSpec("every_instruction_answered", asset="instruction_responses",
                       partitions_def=batch_partitions, blocking=True,
                       description="Each valid instruction has constraints, a response and a "
                                   "verdict per constraint."),
        AssetCheckSpec("constraints_verified_share", asset="instruction_responses",
                       partitions_def=batch_partitions,
                       description="Share of responses that obey every constraint."),
    ],
)
def instruction_responses(
    context: AssetExecutionContext, config: ResponsesConfig,
    warehouse: WarehouseResource, llm: LLMResource,
) -> MaterializeResult:
    """Supervised pairs from the instruction domain: each valid user prompt gets 1 to 3
    verifiable constraints (length, keywords, format, case, ending...) drawn from the sample's
    seed, the model answers the constrained instruction, and deterministic code checks every
    constraint (``constraints_passed`` is true when all hold)."""
    batch = context.partition_key
    template = response.TEMPLATE
    samples = valid_instructions(warehouse.rows, batch)
    items, requests = [], []
    for s in samples:
        constraints = draw_constraints(seed_for(s["sample_id"], s["mode"]), s["text"],
                                       config.max_constraints)
        instruction = instruction_text(s["text"], constraints)
        requests.append(template.request({"instruction": instruction},
                                         seed=seed_for(s["sample_id"], "response")))
        items.append({"sample_id": s["sample_id"], "batch": batch, "instruction": instruction,
                      "constraints": constraints})
    results = llm.generate(requests, log=context.log, label=f"instruction_responses[{batch}]")
    rows = []
    for item, req, res in zip(items, requests, results, strict=True):
        text = res.text.strip() if res.error is None else None
        verdicts = verify(text, item["constraints"])
        rows.append({**item, "constraints": json.dumps(item["constraints"]), "response": text,
                     "constraints_passed": all(verdicts),
                     "constraint_verdicts": json.dumps(verdicts),
                     "n_constraints": len(verdicts), "finish_reason": res.finish_reason,
                     "error": res.error,
                     **provenance(llm.backend, llm.model_name, template.name, template.version,
                                  req, res)})
    warehouse.replace_partitions([
        ("instruction_responses", {"batch": batch}, to_arrow("instruction_responses", rows))])
    stored = answered_instructions(warehouse.rows, batch)
    passed = sum(r["constraints_passed"] for r in rows)
    share = passed / len(rows) if rows else 0.0
    by_kind: dict[str, list[int]] = {}
    for item, row in zip(items, rows, strict=True):
        for c, ok in zip(item["constraints"], json.loads(row["constraint_verdicts"]),
                         strict=True):
            by_kind.setdefault(c["kind"], [0, 0])[0 if ok else 1] += 1
    per_kind = [{"kind": k, "obeyed": v[0], "broken": v[1],
                 "obeyed_rate": round(v[0] / sum(v), 3)} for k, v in sorted(by_kind.items())]
    return materialize_result(
        {
            "instructions": len(rows),
            "responses": sum(r["response"] is not None for r in rows),
            "constraints_passed": passed,
            "verified_share": round(share, 4),
            "constraints_per_instruction": previews.counts(
                dict(Counter(f"{r['n_constraints']} constraints" for r in rows))),
            "per_kind": previews.table(
                per_kind, ["kind", "obeyed", "broken", "obeyed_rate"]),
            **summarize(results),
            "preview": previews.table(
                rows[:5], ["instruction", "response", "constraints_passed"], max_chars=200),
        },
        checks=[
            check_result("every_instruction_answered", stored == len(samples),
                         {"instructions": len(samples), "rows": stored}),
            check_result("constraints_verified_share", share >= config.min_verified_share,
                         {"verified_share": round(share, 4),
                          "min_verified_share": config.min_verified_share,
                          "responses": len(rows)}, warn=True),
        ],
    )
