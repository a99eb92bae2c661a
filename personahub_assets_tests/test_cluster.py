"""Cluster mode on real engines over loopback: Postgres (the DuckLake catalog, the Dagster
instance, the shared response cache), Redis (the Celery broker) and Celery workers.

Every test skips, with the reason, where the servers are missing; `.ci/run` installs them.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import yaml

from personahub_assets.cluster import (
    CELERY_QUEUE_TAG,
    GPU_POOL,
    GPU_QUEUE,
    executor_for,
)
from personahub_assets.lib.common.tables import TABLES, to_arrow
from personahub_assets.settings import Settings
from personahub_assets_tests.cluster_servers import PG_USER, postgres_server

pytestmark = pytest.mark.cluster

pytest.importorskip("psycopg2", reason="the 'cluster' extra is not installed")
pytest.importorskip("duckdb_extension_ducklake", reason="the 'cluster' extra is not installed")

from personahub_assets.resources.duckdb_session import (  # noqa: E402
    OFFLINE_CONFIG,
    ExtensionUnavailable,
    LakeTarget,
    extension_file,
    load_extensions,
)
from personahub_assets.resources.warehouse import (  # noqa: E402
    CommitConflictError,
    ConcurrentChangeError,
    QueryRows,
    WarehouseResource,
)


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server, pytest.MonkeyPatch.context() as mp_:
        # The one way a password reaches libpq here (psycopg2 and DuckDB's postgres extension
        # alike): the environment. No connection string below holds it.
        mp_.setenv("PGPASSWORD", server.password)
        yield server


def _lake(pg, tmp_path, **kw) -> WarehouseResource:
    catalog = pg.create_database("lake_" + uuid.uuid4().hex[:10])
    return WarehouseResource(catalog=catalog, data_path=str(tmp_path / "lake"), **kw)


def _docs(batch: str, n: int, tag: str = "") -> pa.Table:
    return to_arrow("documents", [
        {"doc_id": f"{batch}-{i}{tag}", "batch": batch, "source": "s", "record_no": i,
         "text": f"text {i}{tag}", "n_chars": 6, "content_hash": f"h{i}"} for i in range(n)])


# --- 1. extensions from PyPI, loaded offline ------------------------------------------------

def test_extensions_load_from_their_packages_and_never_implicitly():
    for name in ("ducklake", "postgres_scanner"):
        path = extension_file(name)
        assert path.is_file() and f"v{duckdb.__version__}" in str(path)
    conn = duckdb.connect(config=OFFLINE_CONFIG)
    # With autoload and autoinstall off, nothing is fetched or loaded behind our back...
    with pytest.raises(duckdb.Error):
        conn.execute("ATTACH 'ducklake:postgres:dbname=x host=127.0.0.1' AS x")
    # ...and loading from the package files works without any network.
    load_extensions(conn, "postgres_scanner", "ducklake")
    loaded = {r[0] for r in conn.execute(
        "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    assert {"ducklake", "postgres_scanner"} <= loaded


def test_an_extension_for_another_duckdb_version_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr(duckdb, "__version__", "9.9.9")
    with pytest.raises(ExtensionUnavailable, match=r"exact version.*==9\.9\.9"):
        extension_file("ducklake")


def test_a_password_in_the_catalog_string_is_refused():
    with pytest.raises(ValueError, match="PGPASSWORD"):
        LakeTarget("host=h dbname=d password=hunter2", data_path="x")


# --- 2. the warehouse on DuckLake: same SQL, conflicts retried, compaction -----------------

def _exercise(wh: WarehouseResource) -> dict[str, list[tuple]]:
    """The same calls on either storage mode; returns every table's sorted rows."""
    wh.replace_partition("documents", {"batch": "a"}, _docs("a", 3))
    wh.replace_partition("documents", {"batch": "b"}, _docs("b", 2))
    wh.replace_partition("documents", {"batch": "a"}, _docs("a", 2, tag="new"))
    seen = wh.rows("SELECT count(*) AS n FROM documents")[0]
    keep = pa.table({"doc_id": ["b-1"]})
    wh.replace_partitions(
        [("documents", {"batch": "c"}, QueryRows(
            "SELECT d.* REPLACE ('c' AS batch) FROM documents d JOIN keep USING (doc_id)",
            {"keep": keep})),
         ("rejected_documents", {"batch": "c"}, to_arrow("rejected_documents", [
             {"batch": "c", "source": "s", "record_no": 9, "reason": "too_short"}]))],
        guards=[("SELECT count(*) AS n FROM documents", seen, "moved")])
    with pytest.raises(ConcurrentChangeError):
        wh.replace_partitions([("documents", {"batch": "a"}, _docs("a", 1, tag="x"))],
                              guards=[("SELECT count(*) AS n FROM documents", seen, "moved")])
    tables = {}
    for table in TABLES:
        cols = ", ".join(f'"{c}"' for c in TABLES[table].names)
        tables[table] = sorted(tuple(r.values()) for r in wh.rows(
            f'SELECT {cols} FROM "{table}"'))
    return tables


def test_the_lake_answers_like_the_local_file(pg, tmp_path):
    local = _exercise(WarehouseResource(path=str(tmp_path / "w.duckdb")))
    lake = _exercise(_lake(pg, tmp_path))
    assert lake == local
    assert len(lake["documents"]) == 5 and len(lake["rejected_documents"]) == 1


def _lake_writer(catalog: str, data_path: str, batch: str, rounds: int, out) -> None:
    conflicts = []

    class Count(logging.Handler):
        def emit(self, record):
            if "commit conflict" in record.getMessage():
                conflicts.append(record.getMessage())

    log = logging.getLogger("personahub_assets.resources.warehouse")
    log.setLevel(logging.INFO)
    log.addHandler(Count())
    wh = WarehouseResource(catalog=catalog, data_path=data_path, commit_retries=30)
    for r in range(rounds):
        wh.replace_partition("documents", {"batch": batch}, _docs(batch, 20, tag=f"r{r}"))
    out.put((batch, len(conflicts)))


def test_concurrent_writers_on_many_processes_conflict_and_succeed_on_retry(pg, tmp_path):
    """Four processes start on a fresh catalog at once (its one-time set-up must not race),
    then replace partitions of one table together: conflicts happen and are retried."""
    catalog = pg.create_database("lake_race")
    data_path = str(tmp_path / "lake")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_lake_writer, args=(catalog, data_path, b, 6, out))
             for b in ("w0", "w1", "w2", "w3")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    conflicts = dict(out.get(timeout=5) for _ in procs)
    assert sum(conflicts.values()) > 0, "four writers on one table never conflicted"
    wh = WarehouseResource(catalog=catalog, data_path=data_path)
    counts = wh.rows("SELECT batch, count(*) AS n, min(doc_id) AS first FROM documents "
                     "GROUP BY batch ORDER BY batch")
    assert [(c["batch"], c["n"]) for c in counts] == [(b, 20) for b in ("w0", "w1", "w2", "w3")]
    assert all(c["first"].endswith("r5") for c in counts)  # the last round won everywhere


def test_a_commit_that_keeps_conflicting_reports_the_conflict(pg, tmp_path):
    """A write whose transaction loses the race at COMMIT: with no retries left the user sees
    DuckLake's own conflict message, never "cannot rollback - no transaction is active"."""
    wh = _lake(pg, tmp_path, commit_retries=0)
    wh.replace_partition("documents", {"batch": "a"}, _docs("a", 2))
    reached, go = threading.Event(), threading.Event()

    def gated():  # the slow write's rows arrive only after the other writer committed
        reached.set()
        go.wait(60)
        yield from _docs("a", 1, tag="slow").to_batches()

    schema = TABLES["documents"]
    slow = QueryRows("SELECT * FROM gate",
                     {"gate": pa.RecordBatchReader.from_batches(schema, gated())})
    errors: list[BaseException] = []

    def write():
        try:
            wh.replace_partitions([("documents", {"batch": "a"}, slow)])
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    assert reached.wait(60)
    wh.replace_partition("documents", {"batch": "a"}, _docs("a", 3, tag="fast"))
    go.set()
    thread.join(60)
    assert len(errors) == 1 and isinstance(errors[0], CommitConflictError)
    assert "Transaction conflict" in str(errors[0])
    assert "cannot rollback" not in str(errors[0])
    assert sorted(r["doc_id"] for r in wh.rows("SELECT doc_id FROM documents")) == [
        "a-0fast", "a-1fast", "a-2fast"]


def test_compaction_merges_small_files_and_keeps_every_row(pg, tmp_path):
    wh = _lake(pg, tmp_path)
    for i in range(8):  # larger than DuckLake's inlining limit: each write is a Parquet file
        wh.replace_partition("documents", {"batch": f"b{i}"}, _docs(f"b{i}", 200))
    wh.replace_partition("documents", {"batch": "b0"}, _docs("b0", 200, tag="again"))
    before = wh.rows("SELECT * FROM documents ORDER BY doc_id")
    report = wh.compact(retain_snapshots_s=0)
    assert report["data_files_before"] >= 8
    assert report["data_files_after"] < report["data_files_before"]
    assert report["files_removed"] > 0
    assert wh.rows("SELECT * FROM documents ORDER BY doc_id") == before


# --- 3/5. instance, executors, Kubernetes: configuration only --------------------------------

REPO = Path(__file__).resolve().parents[1]
MODEL_ASSETS = ("text_personas", "relation_personas", "synthetic_data", "math_verification")


def test_model_steps_ask_kubernetes_for_a_gpu_through_dagster_k8s():
    """The tags of every model asset resolve, through dagster-k8s's own parser, into a Job
    whose container requests a GPU; other steps ask for none."""
    pytest.importorskip("dagster_k8s")
    from dagster_k8s.job import (
        DagsterK8sJobConfig,
        construct_dagster_k8s_job,
        get_user_defined_k8s_config,
    )
    from kubernetes.client import ApiClient

    from personahub_assets.definitions import defs

    job_config = DagsterK8sJobConfig(job_image="personahub-assets:test",
                                     dagster_home="/opt/dagster/dagster_home",
                                     instance_config_map="dagster-instance")
    api = ApiClient()

    def container_of(asset: str) -> dict:
        op = defs.resolve_assets_def(asset).op
        user_config = get_user_defined_k8s_config(op.tags)
        k8s_job = construct_dagster_k8s_job(job_config, ["dagster", "api", "execute_step"],
                                            f"step-{asset.replace('_', '-')}",
                                            user_defined_k8s_config=user_config)
        spec = api.sanitize_for_serialization(k8s_job)["spec"]["template"]["spec"]
        return spec, spec["containers"][0]

    for asset in MODEL_ASSETS:
        op = defs.resolve_assets_def(asset).op
        assert op.tags.get(CELERY_QUEUE_TAG) == GPU_QUEUE
        assert op.pool == GPU_POOL
        spec, container = container_of(asset)
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1", asset
        assert container["image"] == "personahub-assets:test"
        assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    for asset in ("web_documents", "persona_hub"):
        _, container = container_of(asset)
        assert "nvidia.com/gpu" not in str(container.get("resources"))


def test_the_executor_is_chosen_by_configuration():
    assert executor_for(Settings.from_env({})) is None
    with pytest.raises(ValueError, match="PERSONAHUB_CELERY_BROKER"):
        executor_for(Settings.from_env({"PERSONAHUB_EXECUTOR": "celery"}))
    with pytest.raises(ValueError, match="choose one of"):
        executor_for(Settings.from_env({"PERSONAHUB_EXECUTOR": "ray"}))
    pytest.importorskip("dagster_celery")
    celery = executor_for(Settings.from_env({"PERSONAHUB_EXECUTOR": "celery",
                                             "PERSONAHUB_CELERY_BROKER": "redis://127.0.0.1:1/0"}))
    assert celery.name == "celery"
    pytest.importorskip("dagster_k8s")
    assert executor_for(Settings.from_env({"PERSONAHUB_EXECUTOR": "k8s"})).name == "k8s"


def _secret_values(node, path=()):
    """Every literal value under a key that names a secret (env references are fine)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if (isinstance(key, str) and re.search(r"pass|secret|token|api_?key", key, re.I)
                    and isinstance(value, str | int) and not str(key).endswith("Name")):
                yield (*path, key), value
            yield from _secret_values(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _secret_values(value, (*path, i))


def test_deploy_files_hold_no_secret_and_keep_the_webserver_private():
    instance = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    values = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
    assert list(_secret_values(instance)) == []
    assert list(_secret_values(values)) == []
    assert instance["storage"]["postgres"]["postgres_db"]["password"] == {
        "env": "DAGSTER_PG_PASSWORD"}
    assert instance["concurrency"]["pools"]["granularity"] == "op"
    # Never public by default: a ClusterIP service, reached through an ingress that sends
    # every request to an authentication service first.
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert values["ingress"]["enabled"] is True
    assert "nginx.ingress.kubernetes.io/auth-url" in values["ingress"]["annotations"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    env = {e["name"]: e.get("value")
           for e in values["dagster-user-deployments"]["deployments"][0]["env"]}
    assert env["PERSONAHUB_EXECUTOR"] == "k8s"
    example = (REPO / "deploy" / "celery.env.example").read_text()
    for line in example.splitlines():
        if re.match(r"(DAGSTER_PG_PASSWORD|PGPASSWORD|PERSONAHUB_LLM_API_KEY)=", line):
            assert line.endswith("="), line  # placeholders stay empty


# --- 4. the shared response cache ------------------------------------------------------------

def _cache_worker(catalog: str, base_url: str, folder: str, prompts: list[str], out) -> None:
    from personahub_assets.lib.synthesis.generation import GenerationRequest
    from personahub_assets.resources.llm import LLMResource

    llm = LLMResource(backend="openai", base_url=base_url, model="fault", cache_catalog=catalog,
                      cache_path=str(Path(folder) / "never.duckdb"), max_retries=0)
    results = llm.generate([GenerationRequest(completion_prompt=p, chat_messages=(("user", p),),
                                              max_tokens=8) for p in prompts])
    out.put([r.text for r in results])


def test_workers_share_one_response_cache_keyed_as_the_local_one(pg, tmp_path):
    """Two worker processes, each in its own folder: the second repeats none of the first's
    calls, and both get the same texts; nothing is written to a local cache file."""
    from personahub_assets.lib.synthesis.generation import GenerationRequest
    from personahub_assets_tests.servers import FaultServer

    catalog = pg.create_database("cache_" + uuid.uuid4().hex[:8])
    prompts = [f"FAULT:ok shared {i}" for i in range(6)]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    with FaultServer() as server:
        texts = []
        for name, batch in (("a", prompts[:4]), ("b", prompts)):
            folder = tmp_path / name
            folder.mkdir()
            proc = ctx.Process(target=_cache_worker,
                               args=(catalog, server.base_url, str(folder), batch, out))
            proc.start()
            proc.join(120)
            assert proc.exitcode == 0
            texts.append(out.get(timeout=5))
            assert not (folder / "never.duckdb").exists()
        assert server.total == 6  # 4 calls by worker a, only the 2 new ones by worker b
    assert texts[1][:4] == texts[0]
    # The key is the one the local cache uses, so a local run can be seeded from the cluster.
    import psycopg2

    from personahub_assets.resources.llm import LLMResource

    llm = LLMResource(backend="openai", base_url="http://127.0.0.1:9/v1", model="fault")
    key = GenerationRequest(completion_prompt=prompts[0], chat_messages=(("user", prompts[0]),),
                            max_tokens=8).cache_key("openai", llm.model_name, "completion")
    conn = psycopg2.connect(catalog)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(*) FILTER (WHERE key = %s) FROM llm_cache",
                        [key])
            assert cur.fetchone() == (6, 1)
    finally:
        conn.close()


# --- 6. the pipeline on Celery workers, end to end ------------------------------------------

SAMPLE = REPO / "data" / "sample" / "web_documents.jsonl"
MODEL_STEPS = {"text_personas", "synthetic_data"}


def _start_worker(folder: Path, env: dict, queue: str, concurrency: int) -> subprocess.Popen:
    log = (folder / "worker.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "personahub_assets.celery_app", "worker",
         "-Q", queue, "-c", str(concurrency), "-n", f"{queue}@%h", "--pool", "prefork",
         "--without-gossip", "--without-mingle", "-l", "INFO"],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(folder: Path, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if " ready." in (folder / "worker.log").read_text(errors="replace"):
            return
        assert proc.poll() is None, (folder / "worker.log").read_text()[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"worker did not start: {(folder / 'worker.log').read_text()[-3000:]}")


def _drive(folder: Path, env: dict, incoming: Path, *extra: str) -> dict:
    out = folder / f"driver{len(list(folder.glob('driver*.json')))}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "personahub_assets_tests.cluster_driver", "--incoming",
         str(incoming), "--out", str(out), *extra],
        cwd=folder, env=env, capture_output=True, text=True, timeout=1500)
    if proc.returncode != 0:
        # The driver prints each failed run's errors on stdout; the workers' logs say more.
        workers = "".join(f"\n--- {log}\n" + log.read_text(errors="replace")[-3000:]
                          for log in sorted(folder.parent.glob("worker-*/worker.log")))
        raise AssertionError(proc.stdout[-6000:] + workers + "\n--- stderr\n"
                             + proc.stderr[-3000:])
    return json.loads(out.read_text())


def _web_answers(folder: Path, env: dict) -> dict:
    """Start the real webserver on the cluster instance and ask it, over GraphQL, for the
    runs and the executions of one asset check."""
    import httpx

    from personahub_assets_tests.servers import free_port

    port = free_port()
    log = (folder / "webserver.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port),
         "-m", "personahub_assets.definitions"],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(base + "/server_info", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                folder / "webserver.log").read_text()[-3000:]
            time.sleep(1)
        query = """{
          runsOrError { ... on Runs { results { runId status } } }
          assetCheckExecutions(assetKey: {path: ["synthetic_data"]},
                               checkName: "samples_provenance", limit: 10) { runId status }
        }"""
        data = httpx.post(base + "/graphql", json={"query": query}, timeout=120).json()["data"]
        return {"runs": {r["runId"] for r in data["runsOrError"]["results"]
                         if r["status"] == "SUCCESS"},
                "checks": data["assetCheckExecutions"]}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _instance_env(pg, db: str) -> dict[str, str]:
    """What deploy/dagster.yaml reads to open the Dagster instance in Postgres database ``db``."""
    return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(pg.port),
            "DAGSTER_PG_DB": db, "DAGSTER_PG_USER": PG_USER, "DAGSTER_PG_PASSWORD": pg.password}


def _tables(wh: WarehouseResource) -> dict[str, list[tuple]]:
    # Wall-clock times differ between any two runs.
    skip = {("batches", "registered_at"), ("hub_ledger", "curated_at"),
            ("retracted_files", "retracted_at")}
    out = {}
    for table in TABLES:
        cols = [c for c in TABLES[table].names if (table, c) not in skip]
        sql = f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{table}"'
        out[table] = sorted((tuple(r.values()) for r in wh.rows(sql)), key=repr)
    return out


@pytest.mark.model
def test_the_pipeline_on_celery_workers_equals_local_mode(pg, tmp_path, monkeypatch):
    """Postgres instance, DuckLake warehouse, shared response cache, Redis broker and two
    Celery workers (model steps on the ``gpu`` queue, the rest on ``dagster``), each in its
    own folder, sharing nothing local but the lake's data path."""
    pytest.importorskip("dagster_celery")
    pytest.importorskip("dagster_postgres")
    from dagster import DagsterEventType, DagsterInstance

    from personahub_assets_tests.cluster_servers import redis_server

    shared = tmp_path / "shared"  # the one shared folder: the lake's Parquet + source files
    lines = SAMPLE.read_text().splitlines()
    incoming = shared / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "first.jsonl").write_text("\n".join(lines[0:2]) + "\n")
    (incoming / "second.jsonl").write_text("\n".join(lines[2:4]) + "\n")
    planted_key = "sk-planted-" + uuid.uuid4().hex
    lake_catalog = pg.create_database("lake_e2e")
    cache_catalog = pg.create_database("cache_e2e")
    pg.create_database("dagster_e2e")
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PERSONAHUB_", "DAGSTER_"))}
    base.update({
        "PYTHONPATH": str(REPO), "PGPASSWORD": pg.password,
        "PERSONAHUB_TEMPLATES_DIR": str(REPO / "templates"),
        # Two records per batch: each file is a batch. Few model calls keep CI short.
        "PERSONAHUB_BATCH_RECORDS": "2", "PERSONAHUB_HOPS": "0", "PERSONAHUB_MAX_PERSONAS": "2",
        "PERSONAHUB_LLM_CACHE_CATALOG": cache_catalog,
        # A planted key: it reaches the resources through an EnvVar and must be found nowhere.
        "PERSONAHUB_LLM_API_KEY": planted_key,
    })
    pg_env = _instance_env(pg, "dagster_e2e")

    def machine(name: str, cluster: bool = True) -> tuple[Path, dict]:
        folder = tmp_path / name
        (folder / "home").mkdir(parents=True)
        env = {**base, "DAGSTER_HOME": str(folder / "home"),
               "PERSONAHUB_DATA_DIR": str(folder / "data")}
        if cluster:
            (folder / "home" / "dagster.yaml").write_text(
                (REPO / "deploy" / "dagster.yaml").read_text())
            env.update(pg_env)
            env.update({
                "DAGSTER_LOCAL_STORAGE": str(folder / "storage"),
                "DAGSTER_COMPUTE_LOGS": str(folder / "logs"),
                "PERSONAHUB_EXECUTOR": "celery",
                "PERSONAHUB_WAREHOUSE_CATALOG": lake_catalog,
                "PERSONAHUB_WAREHOUSE_DATA_PATH": str(shared / "lake"),
            })
        else:
            (folder / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        return folder, env

    with redis_server() as redis_url:
        workers = []
        try:
            for queue, concurrency in (("gpu", 1), ("dagster", 2)):
                folder, env = machine(f"worker-{queue}")
                env["PERSONAHUB_CELERY_BROKER"] = redis_url + "/0"
                workers.append((folder, _start_worker(folder, env, queue, concurrency)))
            for folder, proc in workers:
                _wait_ready(folder, proc)
            folder, env = machine("orchestrator")
            env["PERSONAHUB_CELERY_BROKER"] = redis_url + "/0"
            first = _drive(folder, env, incoming, "--domain", "math")
            again = _drive(folder, env, incoming, "--domain", "math", "--rerun-only")
        finally:
            for _, proc in workers:
                proc.terminate()
            for _, proc in workers:
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()

    # What the webserver shows: it opens the Postgres instance and answers from it.
    web_folder, web_env = machine("webserver")
    web_env["PERSONAHUB_CELERY_BROKER"] = "redis://127.0.0.1:1/0"  # not reached by the UI
    web = _web_answers(web_folder, web_env)

    local_folder, local_env = machine("laptop", cluster=False)
    local = _drive(local_folder, local_env, incoming, "--domain", "math")

    assert len(first["batches"]) == 2 and first["batches"] == local["batches"]
    assert [r["assets"] for r in first["runs"]] == [r["assets"] for r in local["runs"]]

    # Runs, events and check results are in Postgres: a fresh instance (what the webserver
    # opens) reads them back.
    for key, value in {**pg_env, "DAGSTER_LOCAL_STORAGE": str(tmp_path / "reader"),
                       "DAGSTER_COMPUTE_LOGS": str(tmp_path / "reader")}.items():
        monkeypatch.setenv(key, value)
    instance = DagsterInstance.from_config(str(tmp_path / "orchestrator" / "home"))
    try:
        run_ids = [r["run_id"] for r in first["runs"] + again["runs"]]
        stored = {r.run_id: r for r in instance.get_runs()}
        assert set(run_ids) <= set(stored)
        assert all(stored[i].is_success for i in run_ids)

        worker_of, pids_of = {}, {}
        checks = 0
        for run_id in run_ids:
            for record in instance.all_logs(run_id):
                event = record.dagster_event
                text = record.user_message or ""
                # No lock or conflict error reached a run: retries stayed inside the writer.
                assert not re.search(r"conflict|could not lock|lock.*timeout", text, re.I), text
                if event is None:
                    continue
                asset = (event.step_key or "").split(".")[-1]
                if event.event_type == DagsterEventType.STEP_START:
                    pids_of.setdefault(asset, set()).add(event.pid)
                elif event.event_type == DagsterEventType.ENGINE_EVENT and event.step_key:
                    name = (event.engine_event_data.metadata.get("Celery worker")
                            if event.engine_event_data else None)
                    if name is not None:
                        worker_of.setdefault(asset, set()).add(name.value.split("@")[0])
                elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                    checks += 1
        assert checks > 0
        assert web["checks"] and all(c["status"] == "SUCCEEDED" for c in web["checks"])
        assert set(web["runs"]) >= {r["run_id"] for r in first["runs"]}
        # Steps ran in both workers: model steps on the gpu queue's worker, the others on
        # the dagster queue's, in processes that are neither the driver nor each other.
        assert {a: worker_of[a] for a in pids_of} == {
            a: {"gpu" if a in MODEL_STEPS else "dagster"} for a in pids_of}
        model_pids = set().union(*(pids_of[a] for a in MODEL_STEPS))
        other_pids = set().union(*(p for a, p in pids_of.items() if a not in MODEL_STEPS))
        assert model_pids and other_pids and not model_pids & other_pids
        assert first["driver_pid"] not in model_pids | other_pids

        # Re-running repeats no model call, and local mode, on the same response cache,
        # makes none either.
        def llm_calls(runs: list[dict]) -> int:
            total = 0
            for run in runs:
                for record in instance.all_logs(
                        run["run_id"], of_type=DagsterEventType.ASSET_MATERIALIZATION):
                    meta = record.dagster_event.event_specific_data.materialization.metadata
                    total += meta["llm_calls"].value if "llm_calls" in meta else 0
            return total

        assert llm_calls(first["runs"]) > 0
        assert llm_calls(again["runs"]) == 0
    finally:
        instance.dispose()

    # Every table equals what local mode produced on the same input and response cache.
    lake = WarehouseResource(catalog=lake_catalog, data_path=str(shared / "lake"))
    laptop = WarehouseResource(path=str(local_folder / "data" / "warehouse.duckdb"))
    cluster_tables, local_tables = _tables(lake), _tables(laptop)
    assert cluster_tables["synthetic_samples"] and cluster_tables["persona_hub"]
    for table in TABLES:
        assert cluster_tables[table] == local_tables[table], table
    # Nothing but the lake's data path was shared: the workers kept no warehouse file.
    for folder, _ in workers:
        assert not (folder / "data" / "warehouse.duckdb").exists()

    # Secrets: neither the database password nor the planted API key is in any Postgres
    # table (instance, catalog, cache), in the lake's files or in a worker's log.
    import psycopg2

    secrets_ = [pg.password.encode(), planted_key.encode()]
    for db in ("dagster_e2e", "lake_e2e", "cache_e2e"):
        conn = psycopg2.connect(pg.conninfo(db))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = 'public'")
                for (table,) in cur.fetchall():
                    cur.execute(f'SELECT t::text FROM "{table}" t')
                    dump = "\n".join(r[0] for r in cur.fetchall()).encode()
                    assert not any(s in dump for s in secrets_), (db, table)
        finally:
            conn.close()
    # (Small partitions are inlined in the catalog, searched above; larger ones are files.)
    files = [p for p in (shared / "lake").rglob("*") if p.is_file()]
    files += [folder / "worker.log" for folder, _ in workers]
    for path in files:
        data = path.read_bytes()
        assert not any(s in data for s in secrets_), path


def test_the_maintenance_job_compacts_the_lake(pg, tmp_path):
    from personahub_assets.maintenance import warehouse_maintenance

    wh = _lake(pg, tmp_path)
    for i in range(4):
        wh.replace_partition("documents", {"batch": f"m{i}"}, _docs(f"m{i}", 200))
    result = warehouse_maintenance.execute_in_process(
        resources={"warehouse": wh},
        run_config={"ops": {"compact_warehouse": {"config": {"retain_snapshots_hours": 0}}}})
    assert result.success
    [materialization] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    meta = materialization.event_specific_data.metadata
    assert meta["data_files_before"].value == 4 and meta["data_files_after"].value == 1
    assert wh.scalar("SELECT count(*) FROM documents") == 800


def test_pools_get_their_limits_before_the_first_runs_claim_slots(pg, tmp_path, monkeypatch):
    """On a fresh Postgres instance Dagster writes a pool's limit when a step first claims
    it, and two runs doing that at once fail one of them. Registering batches writes every
    pool's limit first; an operator's own limit stays."""
    from dagster import DagsterInstance

    from personahub_assets.automation import register_incoming
    from personahub_assets.cli.update import sync_partitions
    from personahub_assets.cluster import HUB_POOL, POOL_LIMITS
    from personahub_assets.definitions import defs

    pools = {p for ad in defs.resolve_asset_graph().assets_defs for p in ad.node_def.pools or ()}
    assert pools == set(POOL_LIMITS)  # every pool a step claims is written up front

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
    pg.create_database("dagster_pools")
    for key, value in {**_instance_env(pg, "dagster_pools"),
                       "DAGSTER_LOCAL_STORAGE": str(tmp_path / "storage"),
                       "DAGSTER_COMPUTE_LOGS": str(tmp_path / "logs")}.items():
        monkeypatch.setenv(key, value)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    lines = SAMPLE.read_text().splitlines()
    wh = _lake(pg, tmp_path)
    instance = DagsterInstance.from_config(str(home))
    try:
        storage = instance.event_log_storage

        def new_batch_and_limits(name: str, first: int) -> dict[str, int]:
            (incoming / name).write_text("\n".join(lines[first:first + 2]) + "\n")
            register_incoming(wh, incoming)
            assert sync_partitions(instance, wh)  # a new batch: its runs are about to start
            return {p.name: p.limit for p in storage.get_pool_limits()}

        assert storage.get_pool_limits() == []  # a fresh instance has none
        # deploy/dagster.yaml's default for the model pool; one hub writer at a time
        assert new_batch_and_limits("a.jsonl", 0) == {GPU_POOL: 4, HUB_POOL: 1}
        storage.set_concurrency_slots(GPU_POOL, 2)  # the operator's limit for two GPUs
        assert new_batch_and_limits("b.jsonl", 2) == {GPU_POOL: 2, HUB_POOL: 1}
    finally:
        instance.dispose()
