"""Math verification: k independent solutions per math problem and a majority vote."""

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
from personahub_assets.cluster import GPU_POOL, MODEL_STEP_TAGS
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.synthesis.generation import provenance, seed_for
from personahub_assets.lib.synthesis.math_answers import extract_answer, majority, normalize_answer
from personahub_assets.lib.synthesis.queries import stored_math_counts, valid_math_problems
from personahub_assets.partitions import batch_partitions
from personahub_assets.prompts import math_solution
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class MathVerificationConfig(Config):
    """How math problems are verified (the paper kept test problems where 2 of 3 agreed)."""

    solvers: int = Field(default=3, description="Independent solutions per problem (k).")
    min_agree: int = Field(default=2, description="Agreeing answers needed to verify.")


@asset(
    partitions_def=batch_partitions,
    deps=[AssetDep("synthetic_data", partition_mapping=MultiToSingleDimensionPartitionMapping(
        partition_dimension_name="batch"))],
    automation_condition=batch_condition(),
    group_name="quality",
    kinds={"duckdb", "llm", SETTINGS.llm_backend},
    op_tags=MODEL_STEP_TAGS, pool=GPU_POOL,  # a GPU queue, pod and pool in cluster mode
    check_specs=[AssetCheckSpec(
            "every_problem_solved_k_times", asset="math_verification",
            partitions_def=batch_partitions,
                                blocking=True,
                                description="Each valid math problem has k solutions and one "
                                            "vote.")],
)
def math_verification(
    context: AssetExecutionContext, config: MathVerificationConfig,
    warehouse: WarehouseResource, llm: LLMResource,
) -> MaterializeResult:
    """Solve every valid math problem of the batch k times; verify it when answers agree."""
    if not 1 <= config.min_agree <= config.solvers:
        raise ValueError("min_agree must be between 1 and solvers")
    batch = context.partition_key
    template = math_solution.TEMPLATE
    problems = valid_math_problems(warehouse.rows, batch)
    items, requests = [], []
    for p in problems:
        for solver in range(config.solvers):
            requests.append(template.request({"problem": p["text"]},
                                             seed=seed_for(p["sample_id"], "solve", solver)))
            items.append({"sample_id": p["sample_id"], "batch": batch, "solver": solver})
    results = llm.generate(requests, log=context.log, label=f"math_verification[{batch}]")
    solutions = []
    for item, req, res in zip(items, requests, results, strict=True):
        answer = normalize_answer(extract_answer(res.text)) if res.error is None else None
        solutions.append({**item, "solution": res.text, "answer": answer, "error": res.error,
                          "finish_reason": res.finish_reason,
                          **provenance(llm.backend, llm.model_name, template.name,
                                       template.version, req, res)})
    by_problem: dict[str, list[str | None]] = {p["sample_id"]: [] for p in problems}
    for s in solutions:
        by_problem[s["sample_id"]].append(s["answer"])
    answers = []
    for sample_id, got in by_problem.items():
        vote = majority(got)
        answers.append({"sample_id": sample_id, "batch": batch, "answer": vote.answer,
                        "votes": vote.votes, "k": vote.k,
                        "verified": vote.is_verified(config.min_agree)})
    warehouse.replace_partitions([
        ("math_solutions", {"batch": batch}, to_arrow("math_solutions", solutions)),
        ("math_answers", {"batch": batch}, to_arrow("math_answers", answers)),
    ])
    stored = stored_math_counts(warehouse.rows, batch)
    verified = sum(a["verified"] for a in answers)
    agreement = Counter(a["votes"] for a in answers)
    preview = [{"problem": p["text"], "answer": a["answer"], "votes": f"{a['votes']}/{a['k']}"}
               for p, a in zip(problems, answers, strict=True)][:6]
    return materialize_result(
        {
            "problems": len(problems),
            "verified": verified,
            "verified_rate": round(verified / len(problems), 4) if problems else 0.0,
            "agreement": previews.counts(
                {f"{v} of {config.solvers} agree": n for v, n in agreement.items()}),
            **llm.summarize(results),
            "preview": previews.table(preview, ["problem", "answer", "votes"], max_chars=160),
        },
        table="math_answers", row_count=stored["answers"],
        checks=[check_result(
            "every_problem_solved_k_times",
            stored["solutions"] == len(problems) * config.solvers
            and stored["answers"] == len(problems),
            {"problems": len(problems), "solutions": stored["solutions"],
             "votes": stored["answers"]})],
    )
