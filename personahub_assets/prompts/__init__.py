"""The prompt registry: every template of the project, each defined once in its own module."""

from __future__ import annotations

from personahub_assets.prompts import instruction, knowledge, math, npc, reasoning, tool
from personahub_assets.prompts.base import MODES, Template

#: Synthesis templates by domain; the domain partitions are these keys.
SYNTHESIS_TEMPLATES: dict[str, Template] = {
    "math": math.TEMPLATE,
    "reasoning": reasoning.TEMPLATE,
    "instruction": instruction.TEMPLATE,
    "knowledge": knowledge.TEMPLATE,
    "npc": npc.TEMPLATE,
    "tool": tool.TEMPLATE,
}

DOMAINS: tuple[str, ...] = tuple(SYNTHESIS_TEMPLATES)

__all__ = ["DOMAINS", "MODES", "SYNTHESIS_TEMPLATES", "Template"]
