import multiprocessing as mp

import pyarrow as pa
import pytest

from personahub_assets.lib.tables import TABLES, to_arrow
from personahub_assets.resources.warehouse import (
    ConcurrentChangeError,
    QueryRows,
    WarehouseResource,
)


def _docs(shard, n: int, tag: str = "") -> pa.Table:
    return to_arrow("documents", [
        {"doc_id": f"d{shard}-{i}{tag}", "batch": str(shard), "source": "s", "record_no": i,
         "url": None, "text": f"text {i}{tag}", "n_chars": 6, "content_hash": f"h{i}"}
        for i in range(n)])


def test_replace_partition_replaces_only_that_partition(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    wh.replace_partition("documents", {"batch": "0"}, _docs(0, 3))
    wh.replace_partition("documents", {"batch": "1"}, _docs(1, 2))
    wh.replace_partition("documents", {"batch": "0"}, _docs(0, 1, tag="new"))
    rows = wh.rows("SELECT doc_id FROM documents ORDER BY doc_id")
    assert [r["doc_id"] for r in rows] == ["d0-0new", "d1-0", "d1-1"]


def test_failed_write_leaves_the_old_rows(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    wh.replace_partition("documents", {"batch": "0"}, _docs(0, 3))
    bad = pa.table({"batch": pa.array(["0"], pa.string())})  # missing columns: cast fails late
    with pytest.raises(Exception):  # noqa: B017 - any failure must roll back
        wh.replace_partitions([
            ("documents", {"batch": "0"}, _docs(0, 1, tag="half")),
            ("rejected_documents", {"batch": "0"}, bad),
        ])
    assert wh.scalar("SELECT count(*) FROM documents WHERE batch = '0'") == 3
    assert wh.scalar("SELECT count(*) FROM documents WHERE doc_id LIKE '%half'") == 0


def test_where_clause_only_accepts_known_columns(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    with pytest.raises(KeyError):
        wh.replace_partition("documents", {"batch = 0 OR 1=1 --": 0}, _docs(0, 1))
    with pytest.raises(KeyError):
        wh.replace_partition("no_such_table", {}, _docs(0, 1))


def test_content_is_stored_verbatim(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    evil = "'); DROP TABLE documents; -- {persona} </document>"
    rows = to_arrow("documents", [{"doc_id": "x", "batch": "0", "text": evil}])
    wh.replace_partition("documents", {"batch": "0"}, rows)
    assert wh.scalar("SELECT text FROM documents WHERE doc_id = 'x'") == evil


def _writer(path: str, shard: int, rounds: int) -> None:
    wh = WarehouseResource(path=path)
    for r in range(rounds):
        wh.replace_partition("documents", {"batch": str(shard)}, _docs(shard, 20, tag=f"r{r}"))


def test_concurrent_processes_do_not_collide(tmp_path):
    path = str(tmp_path / "w.duckdb")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, shard, 8)) for shard in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    wh = WarehouseResource(path=path)
    counts = wh.rows("SELECT batch, count(*) AS n, min(doc_id) AS first FROM documents "
                     "GROUP BY batch ORDER BY batch")
    assert [(c["batch"], c["n"]) for c in counts] == [(str(s), 20) for s in range(4)]
    assert all(c["first"].endswith("r7") for c in counts)  # the last round won everywhere


def test_every_table_exists_with_its_schema(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    assert set(wh.table_counts()) == set(TABLES)


def test_query_rows_copy_inside_duckdb_and_a_changed_input_blocks_the_write(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    wh.replace_partition("documents", {"batch": "0"}, _docs(0, 4))
    count = "SELECT count(*) AS n FROM documents"
    seen = wh.rows(count)[0]
    keep = pa.table({"doc_id": ["d0-1", "d0-3"]})
    copy = QueryRows("SELECT d.* REPLACE ('1' AS batch) FROM documents d JOIN keep USING (doc_id)",
                     {"keep": keep})
    wh.replace_partitions([("documents", {"batch": "1"}, copy)], guards=[(count, seen, "moved")])
    assert wh.rows("SELECT doc_id, batch FROM documents WHERE batch = '1' ORDER BY doc_id") == [
        {"doc_id": "d0-1", "batch": "1"}, {"doc_id": "d0-3", "batch": "1"}]

    # The guard now sees 6 rows, not the 4 read before: nothing is deleted or written.
    with pytest.raises(ConcurrentChangeError, match="moved"):
        wh.replace_partitions([("documents", {"batch": "0"}, _docs(0, 1, tag="x"))],
                              guards=[(count, seen, "moved")])
    assert wh.scalar("SELECT count(*) FROM documents WHERE batch = '0'") == 4
