import multiprocessing as mp

import pyarrow as pa
import pytest

from personahub_assets.lib.common.tables import TABLES, to_arrow
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


@pytest.mark.slow
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


def _write_on_a_full_disk(path: str, errors) -> None:
    """Replace a partition with writes capped just above the file's size, as on a full disk."""
    import os
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a capped write fails with EFBIG instead
    cap = os.path.getsize(path) + 200_000
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
    rows = to_arrow("documents", [
        {"doc_id": f"big{i}", "batch": "b0", "text": os.urandom(64).hex()} for i in range(20_000)])
    try:
        WarehouseResource(path=path).replace_partition("documents", {"batch": "b0"}, rows)
        errors.put("no error")
    except Exception as exc:  # noqa: BLE001 - the message is what the test checks
        errors.put(f"{type(exc).__name__}: {exc}")


def test_a_failed_commit_reports_its_real_cause_and_keeps_the_data(tmp_path):
    path = str(tmp_path / "w.duckdb")
    wh = WarehouseResource(path=path)
    wh.replace_partition("documents", {"batch": "b0"}, to_arrow("documents", [
        {"doc_id": f"d{i}", "batch": "b0", "text": f"text {i}"} for i in range(3)]))
    wh.compact()  # fold the log into the file, so the file size is the data's
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    proc = ctx.Process(target=_write_on_a_full_disk, args=(path, errors))
    proc.start()
    proc.join(120)
    message = errors.get(timeout=10)
    # The COMMIT itself failed (the write-ahead log could not grow); that is what the user
    # sees, never the follow-up "cannot rollback - no transaction is active".
    assert "Failed to commit" in message and "File too large" in message, message
    assert "cannot rollback" not in message
    assert wh.scalar("SELECT count(*) FROM documents WHERE batch = 'b0'") == 3
    assert wh.scalar("SELECT count(*) FROM documents WHERE doc_id LIKE 'big%'") == 0
