"""Domains declared in template files: a new domain without a code change.

A file ``<templates_dir>/<anything>.yaml`` (or ``.json``) holds one domain::

    domain: haiku                 # the partition key: lower-case letters, digits, underscores
    version: "1"
    instruction: Each persona below is followed by a haiku about their working day.
    output_label: Haiku
    examples:                     # persona-enhanced few-shot demonstrations
      - persona: A night-shift baker in Lyon.
        output: "Flour dust in lamplight / the oven hums its warm song / the city still sleeps"
    max_tokens: 64                # optional, as are temperature and top_p
    json_schema: null             # optional: outputs must then be JSON valid against it
    validation:                   # optional DomainRules fields
      min_words: 8
      max_words: 40
      must_match: "/"
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from personahub_assets.lib.personas.validation import DomainRules
from personahub_assets.prompts.base import Template

_DOMAIN = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_RULE_FIELDS = {"min_words", "max_words", "must_match", "require_number", "require_question",
                "max_persona_overlap"}


class TemplateFileError(ValueError):
    """A template file that cannot define a domain; the message names the file and the field."""


def _load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise TemplateFileError(f"{path.name}: expected a mapping at the top level")
    return data


def parse_domain(data: dict[str, Any], source: str) -> tuple[str, Template, DomainRules]:
    """Turn one template file's content into (domain, template, rules), or raise clearly."""
    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(data.get(key), kind):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " or ".join(k.__name__ for k in kinds)
            raise TemplateFileError(f"{source}: '{key}' must be a {names}")
        return data[key]

    domain = need("domain", str)
    if not _DOMAIN.match(domain):
        raise TemplateFileError(f"{source}: domain {domain!r} must match {_DOMAIN.pattern}")
    examples = need("examples", list)
    for i, ex in enumerate(examples):
        if not (isinstance(ex, dict) and isinstance(ex.get("persona"), str)
                and isinstance(ex.get("output"), str)):
            raise TemplateFileError(f"{source}: examples[{i}] needs 'persona' and 'output' text")
    schema = data.get("json_schema")
    rules_in = data.get("validation") or {}
    unknown = set(rules_in) - _RULE_FIELDS
    if unknown:
        raise TemplateFileError(f"{source}: unknown validation rules {sorted(unknown)}")
    rules = DomainRules(json_schema=schema, **rules_in)
    try:
        rules.validator()
    except Exception as exc:
        raise TemplateFileError(f"{source}: json_schema is not a valid JSON Schema: {exc}") from exc
    template = Template(
        name=f"synthesis.{domain}",
        version=str(need("version", (str, int))),
        instruction=need("instruction", str),
        fields=(("persona", "Persona"),),
        output_label=need("output_label", str),
        examples=tuple({"persona": ex["persona"], "output": ex["output"]} for ex in examples),
        max_tokens=int(data.get("max_tokens", 128)),
        temperature=float(data.get("temperature", 0.7)),
        top_p=float(data.get("top_p", 0.95)),
        stop=() if schema else ("\n",),
        json_schema=schema,
    )
    return domain, template, rules


def load_domains(
    directory: str | Path, builtin: set[str]
) -> dict[str, tuple[Template, DomainRules]]:
    """Every domain declared in ``directory`` (none when it does not exist)."""
    directory = Path(directory)
    found: dict[str, tuple[Template, DomainRules]] = {}
    if not directory.is_dir():
        return found
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml"),
                        *directory.glob("*.json")]):
        domain, template, rules = parse_domain(_load(path), path.name)
        if domain in builtin or domain in found:
            raise TemplateFileError(f"{path.name}: domain {domain!r} is already defined")
        found[domain] = (template, rules)
    return found
