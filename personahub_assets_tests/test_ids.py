from personahub_assets.lib.ids import doc_id, normalize_text, persona_id, sample_id, shard_of


def test_persona_id_ignores_case_spacing_and_edge_punctuation():
    assert persona_id("A nurse who  works nights.") == persona_id("a nurse who works nights")
    assert persona_id("A nurse who works nights") != persona_id("A nurse who works days")


def test_doc_id_depends_on_source_and_text():
    assert doc_id("a.jsonl", "text") == doc_id("a.jsonl", "text")
    assert doc_id("a.jsonl", "text") != doc_id("b.jsonl", "text")
    assert doc_id("a.jsonl", "text") != doc_id("a.jsonl", "text!")


def test_sample_id_changes_with_each_component():
    base = sample_id("p1", "math", "1", 0)
    assert len({base, sample_id("p2", "math", "1", 0), sample_id("p1", "tool", "1", 0),
                sample_id("p1", "math", "2", 0), sample_id("p1", "math", "1", 1)}) == 5


def test_shards_are_stable_and_spread():
    ids = [persona_id(f"persona number {i}") for i in range(1000)]
    shards = [shard_of(i, 4) for i in ids]
    assert shards == [shard_of(i, 4) for i in ids]
    counts = [shards.count(s) for s in range(4)]
    assert min(counts) > 200, counts


def test_normalize_text():
    assert normalize_text('  "Hello\tWORLD!" ') == "hello world"
