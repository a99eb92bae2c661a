from personahub_assets.lib.common.ids import (
    batch_key,
    doc_id,
    normalize_text,
    persona_id,
    sample_id,
)


def test_persona_id_ignores_case_spacing_and_edge_punctuation():
    assert persona_id("A nurse who  works nights.") == persona_id("a nurse who works nights")
    assert persona_id("A nurse who works nights") != persona_id("A nurse who works days")


def test_doc_id_depends_on_source_and_text():
    assert doc_id("a.jsonl", "text") == doc_id("a.jsonl", "text")
    assert doc_id("a.jsonl", "text") != doc_id("b.jsonl", "text")
    assert doc_id("a.jsonl", "text") != doc_id("a.jsonl", "text!")


def test_sample_id_changes_with_each_component_the_model_included():
    base = sample_id("p1", "math", "1", "gemma.gguf", 0)
    others = [sample_id("p2", "math", "1", "gemma.gguf", 0),
              sample_id("p1", "tool", "1", "gemma.gguf", 0),
              sample_id("p1", "math", "2", "gemma.gguf", 0),
              sample_id("p1", "math", "1", "qwen-7b", 0),
              sample_id("p1", "math", "1", "gemma.gguf", 1)]
    assert len({base, *others}) == 6


def test_batch_keys_are_short_stable_and_safe():
    keys = [batch_key(kind, f"fingerprint {i}") for kind in ("documents", "personas")
            for i in range(500)]
    assert len(set(keys)) == 1000
    assert keys == [batch_key(kind, f"fingerprint {i}") for kind in ("documents", "personas")
                    for i in range(500)]
    assert all(len(k) == 14 and k[1] == "-" and "|" not in k for k in keys)
    assert {k[0] for k in keys} == {"d", "p"}


def test_normalize_text():
    assert normalize_text('  "Hello\tWORLD!" ') == "hello world"
