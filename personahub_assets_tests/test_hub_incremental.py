"""The incremental hub (lib/curation/hub.py): batch by batch == one pass == rebuild, and
retraction."""

from __future__ import annotations

import hashlib
import random
import re
from contextlib import contextmanager

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.curation import audit, hub, hub_decisions, hub_state, retraction
from personahub_assets.lib.curation.minhash import near_duplicates
from personahub_assets.lib.curation.vectors import normalize
from personahub_assets.lib.personas.validation import hub_filter_reason
from personahub_assets.resources.warehouse import WarehouseResource

ROLES = ["teacher", "nurse", "welder", "historian", "chemist", "farmer", "pilot", "baker",
         "librarian", "geologist", "violinist", "plumber", "translator", "surgeon", "coach"]
PLACES = ["Lisbon", "Osaka", "Nairobi", "Quito", "Tromso", "Austin", "Hanoi", "Dakar"]
TOPICS = ["soil chemistry", "medieval trade", "river ecology", "jazz harmony", "bridge loads",
          "urban beekeeping", "tax law", "sign language", "volcano monitoring", "opera sets"]


class WordHashEncoder:
    """A deterministic encoder: hashed word unigrams and bigrams, 64 dimensions, unit rows.

    Near-duplicate texts share most features, so their cosine is high; it needs no model.
    """

    name = "word-hash"

    def encode(self, texts):
        out = np.zeros((len(texts), 64), np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            for feature in words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]:
                digest = hashlib.blake2b(feature.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest[:2], "little") % 64] += (
                    1.0 if digest[2] & 1 else -1.0)
        return normalize(out)


def make_corpus(n: int, seed: int) -> list[dict]:
    """Persona rows with planted exact copies, near copies and a few that filters reject."""
    rng = random.Random(seed)
    rows: list[dict] = []
    for i in range(n):
        pick = rng.random()
        if rows and pick < 0.15:
            text = rng.choice(rows)["persona"].upper()  # exact copy after normalization
        elif rows and pick < 0.35:
            words = rng.choice(rows)["persona"].split()
            words.insert(rng.randrange(len(words)), rng.choice(["very", "quite", "still"]))
            text = " ".join(words)  # a near copy
        elif pick < 0.38:
            text = "call me at 555-123-4567 any day please"  # PII: filtered
        else:
            text = (f"A {rng.choice(ROLES)} from {rng.choice(PLACES)} who studies "
                    f"{rng.choice(TOPICS)} and writes about {rng.choice(TOPICS)} on weekends "
                    f"number {rng.randrange(10_000)}")
        method = rng.choice(["import", "text", "relation"])
        rows.append({"persona_id": persona_id(text), "persona": text, "method": method,
                     "depth": int(method == "relation"), "doc_id": f"d{i}",
                     "backend": "test", "model": "test", "template": "t",
                     "template_version": "1", "sampling_params": "{}"})
    return rows


class Warehouse:
    """The warehouse file made by ``WarehouseResource`` (every table created once), then read
    and written through plain DuckDB sessions: the hub functions take any session."""

    def __init__(self, path):
        self.path = str(path)
        self.resource = WarehouseResource(path=self.path)
        with self.resource.session():
            pass

    @contextmanager
    def session(self):
        conn = duckdb.connect(self.path)
        try:
            yield conn
        finally:
            conn.close()

    def rows(self, sql, params=()):
        with self.session() as conn:
            cur = conn.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def scalar(self, sql, params=()):
        with self.session() as conn:
            return conn.execute(sql, list(params)).fetchone()[0]

    def replace_partitions(self, writes):
        self.resource.replace_partitions(writes)


def make_warehouse(path, rows: list[dict], cuts: list[int]) -> Warehouse:
    """A warehouse holding ``rows`` split into batches at ``cuts``, registered in order."""
    wh = Warehouse(path)
    bounds = [0, *cuts, len(rows)]
    personas = []
    with wh.session() as conn:
        for k in range(len(bounds) - 1):
            key = f"p-{k:04d}"
            conn.execute("INSERT INTO batches VALUES (?, 'personas', '{}', ?, ?, ?, 'now')",
                         [key, key, k + 1, bounds[k + 1] - bounds[k]])
            conn.execute("INSERT INTO batch_files VALUES (?, ?, ?, 0, NULL)",
                         [key, f"incoming/personas/{key}.jsonl", key])
            personas += [{**r, "batch": key} for r in rows[bounds[k]:bounds[k + 1]]]
    wh.replace_partitions([("personas", {}, to_arrow("personas", personas))])
    return wh


SETTINGS = hub_decisions.HubSettings(encoder="word-hash", embedding_threshold=0.95, ivf_min_hub=0)


def one_pass_reference(rows: list[dict], cuts: list[int]) -> tuple[set[str], set[str]]:
    """The MinHash survivors and the hub of the whole corpus in one pass (no batches
    involved in the MinHash decisions), in the decision order (sequence, method, depth, ID)."""
    bounds = [0, *cuts, len(rows)]
    order = []
    for k in range(len(bounds) - 1):
        part = rows[bounds[k]:bounds[k + 1]]
        rank = {"import": 0, "text": 1, "relation": 2}
        order += sorted(part, key=lambda r: (rank[r["method"]], r["depth"], r["persona_id"],
                                             r["doc_id"]))
    seen, survivors = set(), []
    for r in order:
        if hub_filter_reason(r["persona"]) is None and r["persona_id"] not in seen:
            seen.add(r["persona_id"])
            survivors.append(r)
    drops = {d.index for d in near_duplicates([r["persona"] for r in survivors], 0.9)}
    after = [r for k, r in enumerate(survivors) if k not in drops]
    return {r["persona_id"] for r in after}, {r["persona_id"] for r in survivors}


def curate_all(wh: Warehouse, settings=SETTINGS) -> list[hub_decisions.BatchOutcome]:
    outcomes, blocked = hub.curate_pending(wh.session, settings, WordHashEncoder())
    assert blocked is None
    return outcomes


@pytest.mark.slow
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), data=st.data())
def test_incremental_equals_one_pass_and_rebuild_for_any_split(tmp_path_factory, seed, data):
    rows = make_corpus(120, seed)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(rows) - 1), max_size=6)))
    wh = make_warehouse(tmp_path_factory.mktemp("hub") / "w.duckdb", rows, cuts)
    # incremental: one curation call per batch, as the asset's runs would do
    for batch, seq in hub_state.pending_batches(wh.session):
        outs, blocked = hub.curate_pending(wh.session, SETTINGS, WordHashEncoder(),
                                           upto_seq=seq)
        assert blocked is None and [o.batch for o in outs] == [batch]
    incremental = hub_state.hub_snapshot(wh.session)
    # the MinHash stage equals one pass over the whole corpus in the same order
    minhash_kept, survivors = one_pass_reference(rows, cuts)
    members = wh.rows("SELECT persona_id, stage FROM hub_members")
    assert {r["persona_id"] for r in members} == survivors
    assert {r["persona_id"] for r in members if r["stage"] != "minhash"} == minhash_kept
    # rebuild by replay gives the identical hub, row for row, in every state table
    hub.rebuild(wh.session, SETTINGS, WordHashEncoder())
    assert hub_state.hub_snapshot(wh.session) == incremental
    assert audit.ledger_accounting(wh.session) == []
    assert incremental["persona_hub"], "the corpus always keeps someone"


def test_state_is_used_and_stages_fire(tmp_path):
    rows = make_corpus(300, 7)
    wh = make_warehouse(tmp_path / "w.duckdb", rows, [100, 200])
    outcomes = curate_all(wh)
    assert [o.batch for o in outcomes] == ["p-0000", "p-0001", "p-0002"]
    assert sum(o.exact for o in outcomes[1:]) > 0, "copies of earlier batches are exact drops"
    assert sum(o.minhash for o in outcomes) > 0
    assert sum(o.filtered for o in outcomes) > 0
    log = wh.rows("SELECT l.batch, l.duplicate_of FROM persona_dedup_log l "
                  "WHERE stage = 'minhash'")
    earlier = wh.rows("SELECT persona_id, batch FROM hub_members")
    owner = {r["persona_id"]: r["batch"] for r in earlier}
    assert any(owner[r["duplicate_of"]] < r["batch"] for r in log), \
        "some near duplicates are found in the persisted state of an earlier batch"
    # a batch is curated once: running again does nothing
    assert hub.curate_pending(wh.session, SETTINGS, WordHashEncoder()) == ([], None)
    counts = wh.rows("SELECT count(*) AS n FROM persona_hub GROUP BY batch ORDER BY batch")
    assert len(counts) == 3


def test_settings_change_needs_a_rebuild(tmp_path):
    wh = make_warehouse(tmp_path / "w.duckdb", make_corpus(50, 1), [25])
    hub.curate_pending(wh.session, SETTINGS, WordHashEncoder(), upto_seq=1)
    other = hub_decisions.HubSettings(encoder="word-hash", embedding_threshold=0.8, ivf_min_hub=0)
    with pytest.raises(hub_state.HubStateError, match="rebuild_hub"):
        hub.curate_pending(wh.session, other, WordHashEncoder())
    hub.rebuild(wh.session, other, WordHashEncoder())
    assert hub_state.ledger_settings(wh.session) == other


def test_blocked_by_an_unready_earlier_batch(tmp_path):
    wh = make_warehouse(tmp_path / "w.duckdb", make_corpus(60, 2), [20, 40])
    outs, blocked = hub.curate_pending(wh.session, SETTINGS, WordHashEncoder(),
                                       ready=lambda b: b != "p-0001")
    assert [o.batch for o in outs] == ["p-0000"] and blocked == ("p-0001", 2)
    assert wh.scalar("SELECT count(*) FROM hub_ledger") == 1


def test_frozen_ivf_index_is_deterministic_and_replayable(tmp_path):
    rows = make_corpus(400, 3)
    ivf = hub_decisions.HubSettings(encoder="word-hash", embedding_threshold=0.95, ivf_min_hub=100,
                                    ivf_nlist=8, ivf_nprobe=2)
    wh = make_warehouse(tmp_path / "w.duckdb", rows, [100, 200, 300])
    outcomes = curate_all(wh, ivf)
    assert [o.index for o in outcomes][0] == "exact" and outcomes[-1].index == "ivf"
    assert wh.scalar("SELECT count(*) FROM hub_index") == 8
    assert wh.scalar("SELECT count(*) FROM hub_vectors WHERE list < 0") == 0
    first = hub_state.hub_snapshot(wh.session)
    hub.rebuild(wh.session, ivf, WordHashEncoder())
    assert hub_state.hub_snapshot(wh.session) == first


def test_retract_a_middle_batch_equals_never_having_it(tmp_path):
    rows = make_corpus(240, 11)
    # batch 2 holds the originals of later copies: retracting it must re-admit them
    wh = make_warehouse(tmp_path / "w.duckdb", rows, [80, 160])
    curate_all(wh)
    exports = tmp_path / "exports"
    (exports / "math").mkdir(parents=True)
    (exports / "math" / "p-0001.jsonl").write_text("{}\n")
    (exports / "math" / "p-0001.parquet").write_text("x")
    (exports / "math" / "p-0002.jsonl").write_text("{}\n")
    # samples of every hub persona, so we can see the ones that leave go
    with wh.session() as conn:
        conn.execute("INSERT INTO synthetic_samples (sample_id, domain, batch, persona_id, "
                     "valid) SELECT 's' || persona_id, 'math', batch, persona_id, true "
                     "FROM persona_hub")
        conn.execute("INSERT INTO math_answers (sample_id, batch, verified) SELECT "
                     "sample_id, batch, true FROM synthetic_samples")
    report = hub.retract_batch(wh.session, "p-0001", None, WordHashEncoder(), exports)
    assert report.seq == 2 and report.replayed == ["p-0002"]
    assert report.personas_admitted > 0, "copies of the retracted batch come back"
    assert sorted(p.rsplit("/", 1)[-1] for p in report.files_deleted) == [
        "p-0001.jsonl", "p-0001.parquet"]
    assert (exports / "math" / "p-0002.jsonl").exists()
    for table in retraction.BATCH_TABLES:
        assert wh.scalar(f'SELECT count(*) FROM "{table}" WHERE batch = ?', ["p-0001"]) == 0
    assert wh.scalar("SELECT count(*) FROM retracted_files WHERE batch = 'p-0001'") == 1
    # samples left only for personas still in the hub, in the same batch
    assert wh.scalar("SELECT count(*) FROM synthetic_samples s WHERE NOT EXISTS (SELECT 1 "
                     "FROM persona_hub h WHERE h.persona_id = s.persona_id AND "
                     "h.batch = s.batch)") == 0
    assert wh.scalar("SELECT count(*) FROM math_answers WHERE sample_id NOT IN "
                     "(SELECT sample_id FROM synthetic_samples)") == 0
    # the same hub as a warehouse that never had the batch
    never = make_warehouse(tmp_path / "never.duckdb", rows[:80] + rows[160:], [80])
    with never.session() as conn:  # same keys and sequence numbers as the survivors
        conn.execute("UPDATE personas SET batch = 'p-0002' WHERE batch = 'p-0001'")
        conn.execute("UPDATE batches SET batch = 'p-0002', seq = 3 WHERE batch = 'p-0001'")
    curate_all(never)
    assert hub_state.hub_snapshot(wh.session) == hub_state.hub_snapshot(never.session)
    assert audit.ledger_accounting(wh.session) == []


def test_checks_see_what_the_filters_missed(tmp_path):
    rows = make_corpus(120, 5)
    wh = make_warehouse(tmp_path / "w.duckdb", rows, [60])
    curate_all(wh)
    sample = audit.consistent_sample(wh.session, 10_000)
    assert len(sample) == wh.scalar("SELECT count(*) FROM persona_hub")
    assert audit.pairs_at_or_above([t for _, t in sample], 0.9) == []
    assert audit.ledger_accounting(wh.session) == []
    # a near duplicate slipped into the hub behind the curation's back is found
    victim = wh.rows("SELECT * FROM persona_hub LIMIT 1")[0]
    twin = {**victim, "persona_id": "pTWIN", "persona": victim["persona"] + " indeed"}
    wh.replace_partitions([("persona_hub", {"persona_id": "pTWIN"},
                            to_arrow("persona_hub", [twin]))])
    sample = audit.consistent_sample(wh.session, 10_000)
    assert audit.pairs_at_or_above([t for _, t in sample], 0.9)
    broken = audit.ledger_accounting(wh.session)
    assert [r["batch"] for r in broken] == [victim["batch"]]


def test_asset_curates_in_sequence_order_and_retraction_reaches_dagster(tmp_path):
    from dagster import DagsterInstance, materialize

    from personahub_assets.definitions import ASSETS
    from personahub_assets.hub_jobs import retract
    from personahub_assets.partitions import BATCHES
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets_tests.batch_helpers import empty_batch

    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    rows = make_corpus(90, 4)
    with DagsterInstance.ephemeral() as instance:
        keys = [empty_batch(wh, instance, f"set{k}") for k in range(3)]
        wh.replace_partition("personas", {}, to_arrow("personas", [
            {**r, "batch": keys[i // 30]} for i, r in enumerate(rows)]))
        resources = {"warehouse": wh, "embeddings": EmbeddingsResource(),
                     "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb")),
                     "judge_llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
        config = {"ops": {"persona_hub": {"config": {"embedding_dedup": False}}}}
        # the last batch first: it curates all three, in sequence order
        result = materialize(ASSETS, selection=["persona_hub"], partition_key=keys[2],
                             resources=resources, instance=instance, run_config=config)
        assert result.success
        assert all(e.passed for e in result.get_asset_check_evaluations())
        meta = result.asset_materializations_for_node("persona_hub")[0].metadata
        assert meta["curated_by_this_run"].value == keys
        # the per-language table of the run's batch accounts for its personas
        languages = [r.data for r in meta["languages"].records]
        assert sum(r["in"] for r in languages) == meta["personas_in"].value
        assert sum(r["kept"] for r in languages) == meta["kept"].value
        assert [r["batch"] for r in wh.rows("SELECT batch FROM hub_ledger ORDER BY seq")] \
            == keys
        # an earlier batch's run finds it curated and only reports
        result = materialize(ASSETS, selection=["persona_hub"], partition_key=keys[0],
                             resources=resources, instance=instance, run_config=config)
        assert result.success
        assert result.asset_materializations_for_node("persona_hub")[0].metadata[
            "curated_by_this_run"].value == []
        retraction = retract(keys[1], wh, EmbeddingsResource(), instance,
                             str(tmp_path / "exports"))
        assert keys[1] not in instance.get_dynamic_partitions(BATCHES)
        assert retraction.replayed == [keys[2]]
        assert audit.ledger_accounting(wh.session) == []
        result = materialize(ASSETS, selection=["persona_hub"], partition_key=keys[2],
                             resources=resources, instance=instance, run_config=config)
        assert result.success and all(e.passed for e in result.get_asset_check_evaluations())


def test_language_funnel_accounts_for_every_persona_per_language(tmp_path):
    """persona_hub's per-language table: for each language of a batch, in = dropped at each
    stage + kept, the totals match the ledger, and a planted copy in one language is that
    language's drop, not another's."""
    rows = make_corpus(200, 11)
    russian = "Инженер-геолог из Томска, который изучает вечную мерзлоту и пишет о ней книги"
    rows += [{**rows[0], "persona_id": persona_id(t), "persona": t, "doc_id": f"ru{k}"}
             for k, t in enumerate([russian, russian.upper()])]  # an exact copy
    for r in rows:
        r["language"] = "ru" if r["persona"].lower() == russian.lower() else "en"
    wh = make_warehouse(tmp_path / "w.duckdb", rows, [100])
    curate_all(wh)
    for ledger in wh.rows("SELECT * FROM hub_ledger ORDER BY seq"):
        funnel = audit.language_funnel(wh.session, ledger["batch"])
        for row in funnel:
            assert row["in"] == (row["filtered"] + row["exact"] + row["minhash"]
                                 + row["embedding"] + row["kept"]), row
        assert sum(r["in"] for r in funnel) == ledger["personas_in"]
        assert sum(r["kept"] for r in funnel) == ledger["kept"]
        assert sum(r["exact"] for r in funnel) == ledger["exact"]
    last = {r["language"]: r for r in audit.language_funnel(wh.session, "p-0001")}
    assert last["ru"]["in"] == 2 and last["ru"]["exact"] == 1 and last["ru"]["kept"] == 1
    assert last["ru"]["drop_rate"] == 0.5
