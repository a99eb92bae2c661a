"""The prompt registry: every template of the project, each defined once in its own module."""

from __future__ import annotations

from personahub_assets.lib.personas.validation import BUILTIN_RULES, DomainRules
from personahub_assets.prompts import instruction, knowledge, math, npc, reasoning, tool
from personahub_assets.prompts.base import MODES, Template
from personahub_assets.prompts.custom import load_domains
from personahub_assets.settings import SETTINGS

#: Synthesis templates by domain: the six built-ins, then those of the templates folder.
SYNTHESIS_TEMPLATES: dict[str, Template] = {
    "math": math.TEMPLATE,
    "reasoning": reasoning.TEMPLATE,
    "instruction": instruction.TEMPLATE,
    "knowledge": knowledge.TEMPLATE,
    "npc": npc.TEMPLATE,
    "tool": tool.TEMPLATE,
}
#: Validation rules by domain.
DOMAIN_RULES: dict[str, DomainRules] = dict(BUILTIN_RULES)

for _domain, (_template, _rules) in load_domains(SETTINGS.templates_dir,
                                                  set(SYNTHESIS_TEMPLATES)).items():
    SYNTHESIS_TEMPLATES[_domain] = _template
    DOMAIN_RULES[_domain] = _rules

#: The domain partitions.
DOMAINS: tuple[str, ...] = tuple(SYNTHESIS_TEMPLATES)

__all__ = ["DOMAINS", "DOMAIN_RULES", "MODES", "SYNTHESIS_TEMPLATES", "Template"]
