"""What both llama.cpp paths share: the sampling defaults and the JSON-schema grammar.

:mod:`.llamacpp` (one request at a time) and :mod:`.llamacpp_batched` (continuous batching)
both import from here, so neither has to import the other to sample alike.
"""

from __future__ import annotations

import json
from typing import Any

#: Sampling defaults of llama-cpp-python's high-level API, used by both llama.cpp paths.
TOP_K, MIN_P = 40, 0.05

#: The string character rule of llama-cpp-python's JSON-schema converter lets a raw control
#: character (a newline) into a string, which is not JSON: the judge's verdicts broke on it.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def json_gbnf(schema: dict[str, Any]) -> str:
    """The llama.cpp grammar (GBNF) of a JSON schema, with strings limited to what JSON allows.

    Key order matters: the grammar emits properties in the schema's order, which should match
    the order of the few-shot examples.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(json.dumps(schema)).replace(_LOOSE_CHAR, _JSON_CHAR)
