"""The demo report's quality section: attributes, judge scores, safety, constraints, cards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from personahub_assets.lib.quality.quality import QUALITY_COLUMNS


def quality_summary(warehouse: Any, exports_dir: Path) -> str:
    """Lines that show what issue 16 added, from the warehouse and the export folders."""
    def rows(sql: str) -> list[dict]:
        try:
            return warehouse.rows(sql)
        except Exception:  # a table a partial run never created: report nothing for it
            return []

    out = ["", "Data quality"]
    attrs = rows("SELECT count(*) AS n, count(occupation) AS occ, count(domain) AS dom, "
                 "count(expertise) AS exp, count(language) AS lang FROM persona_attributes")
    if attrs and attrs[0]["n"]:
        a = attrs[0]
        out.append(f"  persona attributes: {a['n']} personas; filled occupation {a['occ']}, "
                   f"domain {a['dom']}, expertise {a['exp']}, language {a['lang']}")
        top = rows("SELECT domain, count(*) AS n FROM persona_attributes GROUP BY domain "
                   "ORDER BY n DESC, domain LIMIT 5")
        out.append("    top domains: " + ", ".join(f"{r['domain']} {r['n']}" for r in top))
        src = rows("SELECT attribute_source AS s, count(*) AS n FROM persona_attributes "
                   "GROUP BY s ORDER BY s")
        out.append("    from: " + ", ".join(f"{r['s']} {r['n']}" for r in src))
    judged = rows("SELECT domain, count(*) AS n, count(judge_score) AS scored, "
                  "round(avg(judge_score), 2) AS mean, count(*) FILTER (WHERE safety_flag) "
                  "AS flagged FROM sample_quality GROUP BY domain ORDER BY domain")
    if judged:
        out.append("  judge and safety (per domain: samples, judged, mean score, flagged)")
        for r in judged:
            out.append(f"    {r['domain']:<14}{r['n']:>5}{r['scored']:>6}{r['mean'] or 0:>7}"
                       f"{r['flagged']:>5}")
    verified = rows("SELECT count(*) AS n, count(*) FILTER (WHERE constraints_passed) AS ok, "
                    "sum(n_constraints) AS c FROM instruction_responses")
    if verified and verified[0]["n"]:
        v = verified[0]
        out.append(f"  instruction responses: {v['n']} with {v['c']} constraints; "
                   f"{v['ok']} obey all ({v['ok'] / v['n']:.0%})")
    cards = sorted(Path(exports_dir).glob("*/README.md"))
    if cards:
        out.append(f"  dataset cards: {len(cards)} ({', '.join(c.parent.name for c in cards)})"
                   f"; export columns include {', '.join(QUALITY_COLUMNS)}")
    return "\n".join(out) + "\n"
