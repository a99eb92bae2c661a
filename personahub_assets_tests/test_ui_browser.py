"""The Dagster UI end to end: a real webserver on a seeded instance, driven by headless Chromium.

A child process registers the shipped samples as batches (the corpus as two document batches,
the persona set as a third) and materializes the cheap part of the graph (no model calls) into
a temporary DAGSTER_HOME: ``web_documents`` of the document batches, ``imported_personas`` of
the persona set and ``persona_hub`` of every batch. Then ``dagster-webserver`` serves that
instance, and Chromium opens the asset lineage, persona_hub's metadata and its check results.
The test asserts that they show what the seeding run recorded, and saves one screenshot per
page. Screenshots go to tmp_path, or to ``$PERSONAHUB_SCREENSHOT_DIR`` when it is set (the
README's come from ``docs/screenshots``).

Skips, with the reason, where the ``playwright`` package or Chromium is missing. Chromium is
Debian's ``/usr/bin/chromium`` (or ``$PERSONAHUB_CHROMIUM``); Playwright's own browser download
is not used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("PERSONAHUB_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium waits on connections this machine refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}
SERVER_TIMEOUT_S = 120
UI_TIMEOUT_MS = 30_000
# What must be on the pages whatever else the definitions grow.
CORE_ASSETS = {"web_documents", "imported_personas", "persona_hub", "synthetic_data",
               "math_verification", "dataset_export"}
CORE_GROUPS = {"ingestion", "personas", "curation", "synthesis", "quality", "export"}
HUB_CHECKS = {"hub_accounted", "hub_unique_ids", "hub_no_near_duplicates", "hub_no_pii"}
HUB_METADATA = ("personas_in", "hub_size")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                              "PERSONAHUB_CHROMIUM)"),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install "
                                  "playwright; its browser download is not needed)")

# Runs in a child process, because personahub_assets.settings reads the environment at import
# time and conftest has already fixed it for this one. argv: output JSON, persona file.
SEED = r"""
import json, sys
from dagster import DagsterInstance, materialize
from personahub_assets.automation import register_source
from personahub_assets.definitions import ASSETS, build_resources
from personahub_assets.partitions import BATCHES
from personahub_assets.settings import SETTINGS

out, documents, personas = sys.argv[1], sys.argv[2], sys.argv[3]
instance = DagsterInstance.get()
resources = build_resources(SETTINGS)
warehouse = resources["warehouse"]
# The sample corpus as two document batches and the sample persona set as a third, as
# `make demo` registers them.
with open(documents, "rb") as fh:
    half = -(-sum(1 for _ in fh) // 2)
doc_batches = [b.key for b in register_source(warehouse, documents, max_records=half)]
[persona_batch] = [b.key for b in register_source(warehouse, personas, kind="personas")]
instance.add_dynamic_partitions(BATCHES, doc_batches + [persona_batch])

def run(selection, key, config=None):
    result = materialize(ASSETS, selection=selection, partition_key=key, instance=instance,
                         resources=resources,
                         run_config={"ops": {k: {"config": v} for k, v in (config or {}).items()}})
    assert result.success, (selection, key)
    return result

for batch in doc_batches:
    run(["web_documents"], batch)
run(["imported_personas"], persona_batch)
for batch in doc_batches + [persona_batch]:
    hub = run(["persona_hub"], batch)  # the latest run is the one the UI shows
metadata = hub.get_asset_materialization_events()[0].materialization.metadata
with open(out, "w") as f:
    json.dump({
        "groups": {k.to_user_string(): g for a in ASSETS for k, g in a.group_names_by_key.items()},
        "batches": doc_batches + [persona_batch],
        "hub_metadata": {k: v.value for k, v in metadata.items()
                         if isinstance(v.value, (int, float, str))},
        "hub_checks": {e.check_name: e.passed for e in hub.get_asset_check_evaluations()},
    }, f)
"""

WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(base: str, query: str) -> dict:
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)["data"]


def _wait_for_location(base: str, proc: subprocess.Popen, log: Path) -> None:
    """Until the webserver answers and its code location is loaded; fail on a load error."""
    deadline = time.monotonic() + SERVER_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited ({proc.returncode}):\n"
                        f"{log.read_text()[-3000:]}")
        try:
            ws = _graphql(base, WORKSPACE_QUERY)["workspaceOrError"]
            entries = ws.get("locationEntries") or []
            errors = [e["locationOrLoadError"].get("message") for e in entries
                      if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
            if errors:
                pytest.fail(f"code location failed to load: {errors[0]}")
            if entries and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"]
                               for e in entries):
                return
            last = json.dumps(ws)[:300]
        except OSError as exc:  # not listening yet
            last = repr(exc)
        time.sleep(0.5)
    pytest.fail(f"webserver not ready after {SERVER_TIMEOUT_S} s ({last}):\n"
                f"{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """The webserver and its code server share a process group; end the group."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    # The code server may outlive its parent by a moment; leave nothing of the group behind.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A seeded instance served by dagster-webserver: (base URL, what the seeding run saw)."""
    tmp = tmp_path_factory.mktemp("ui")
    home, data = tmp / "dagster_home", tmp / "data"
    home.mkdir()
    data.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "PERSONAHUB_DATA_DIR": str(data)}
    seed_out = tmp / "seed.json"
    seeded = subprocess.run(
        [sys.executable, "-c", SEED, str(seed_out), str(REPO / "data/sample/web_documents.jsonl"),
         str(REPO / "data/sample/personas.jsonl")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert seeded.returncode == 0, seeded.stderr[-4000:]
    seed = json.loads(seed_out.read_text())

    webserver = Path(sys.executable).with_name("dagster-webserver")
    cmd = [str(webserver)] if webserver.exists() else [sys.executable, "-m", "dagster_webserver"]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "webserver.log"
    with log.open("w") as log_file:
        proc = subprocess.Popen(cmd + ["-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
                                cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_for_location(base, proc, log)
        yield base, seed
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("PERSONAHUB_SCREENSHOT_DIR")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """One headless Chromium page on a fresh, empty profile."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport=VIEWPORT)
        try:
            # Skip the first-visit "Join the Dagster community" dialog, and fold the left
            # navigation so the pages get the width.
            context.add_init_script("localStorage.setItem('communityNux', '\"1\"');"
                                    "localStorage.setItem('dagster-nav-collapsed', 'true');")
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            sync_api.expect.set_options(timeout=UI_TIMEOUT_MS)
            yield page
        finally:
            context.close()


def _fit_graph(page) -> None:
    """Frame the whole lineage: the graph fits itself only beside the asset sidebar, so hide
    the sidebar, then centre the graph and zoom (ctrl + wheel at the centre) a step at a time
    until it spans most of the width. Centring before every step keeps both ends on screen:
    the graph draws only the nodes inside the viewport."""
    page.locator("button:has([aria-label=panel_show_right])").click()
    page.wait_for_timeout(500)

    def span():
        a = page.get_by_text(_node_label("web_documents")).last.bounding_box()
        b = page.get_by_text(_node_label("dataset_export")).last.bounding_box()
        return a["x"], b["x"] + b["width"], (a["y"] + b["y"]) / 2

    centre = (VIEWPORT["width"] / 2 + 30, VIEWPORT["height"] / 2 + 30)

    def centre_graph():
        left, right, mid = span()
        page.mouse.move((left + right) / 2, mid)
        page.mouse.down()
        page.mouse.move(*centre, steps=10)
        page.mouse.up()
        page.wait_for_timeout(300)

    for _ in range(12):
        centre_graph()
        left, right, _mid = span()
        if right - left > 0.75 * VIEWPORT["width"]:
            break
        page.mouse.move(*centre)
        page.keyboard.down("Control")
        page.mouse.wheel(0, -5)
        page.keyboard.up("Control")
        page.wait_for_timeout(300)
    centre_graph()


def _node_label(name: str) -> re.Pattern[str]:
    """The label of an asset node: the whole name, or the name cut in the middle with an
    ellipsis, as the graph draws long names (`instruction_responses` shows as
    `instruc…_responses`). Each side of the cut keeps at least three characters."""
    cuts = [
        re.escape(name[:i]) + "…" + re.escape(name[j:])
        for i in range(3, len(name) - 3)
        for j in range(i + 1, len(name) - 2)
    ]
    return re.compile("^(?:" + "|".join([re.escape(name), *cuts]) + ")$")


def test_asset_graph_shows_every_asset_and_group(ui, page, shots):
    base, seed = ui
    groups = set(seed["groups"].values())
    assert set(seed["groups"]) >= CORE_ASSETS and groups >= CORE_GROUPS
    # The global lineage opens with every group folded; `expanded` unfolds them
    # (keys as the UI writes them: global@global:<group>).
    expanded = ",".join(f"global@global:{g}" for g in sorted(groups))
    page.goto(f"{base}/asset-groups?expanded={quote(expanded)}", wait_until="networkidle")
    sync_api.expect(page.get_by_text("Global asset lineage")).to_be_visible()
    for asset in seed["groups"]:
        sync_api.expect(page.get_by_text(_node_label(asset)).last).to_be_visible()
    _fit_graph(page)
    for asset in seed["groups"]:
        sync_api.expect(page.get_by_text(_node_label(asset)).last).to_be_in_viewport()
    for group in groups:  # group boxes in the graph (the sidebar tree is hidden now)
        sync_api.expect(page.get_by_text(group, exact=True).last).to_be_in_viewport()
    page.screenshot(path=str(shots / "asset-graph.png"), full_page=True)


def test_persona_hub_page_shows_its_metadata(ui, page, shots):
    base, seed = ui
    page.goto(f"{base}/assets/persona_hub", wait_until="networkidle")
    sync_api.expect(page.get_by_text("Latest materialization")).to_be_visible()
    heading = page.get_by_text("Metadata", exact=True).first
    sync_api.expect(heading).to_be_visible()
    for key in HUB_METADATA:
        row = page.locator("tr").filter(has=page.get_by_text(key, exact=True))
        sync_api.expect(row).to_have_count(1)
        value = row.locator("td").last
        sync_api.expect(value).to_have_text(re.compile(rf"^\s*{seed['hub_metadata'][key]}\s*$"))
    # The section scrolls inside the page; bring it to the top for the picture.
    heading.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "persona-hub-metadata.png"), full_page=True)


def test_persona_hub_checks_tab_shows_them_passed(ui, page, shots):
    base, seed = ui
    assert set(seed["hub_checks"]) >= HUB_CHECKS and all(seed["hub_checks"].values())
    page.goto(f"{base}/assets/persona_hub?view=checks", wait_until="networkidle")
    sync_api.expect(page.get_by_text(f"Checks ({len(seed['hub_checks'])})")).to_be_visible()
    for check in seed["hub_checks"]:
        # Each row: a check_circle icon, the name (title=...) and its latest status.
        row = page.locator("span").filter(has=page.locator(f'[title="{check}"]')).last
        sync_api.expect(row).to_contain_text("Succeeded")
    # The first check is open on the right: its latest evaluation passed.
    sync_api.expect(page.get_by_text("Evaluation result")).to_be_visible()
    sync_api.expect(page.get_by_text("Passed", exact=True)).to_be_visible()
    page.screenshot(path=str(shots / "persona-hub-checks.png"), full_page=True)


def test_persona_hub_plots_render_as_images(ui, page, shots):
    """The dedup funnel, drawn as an SVG in markdown metadata, opens and decodes in the UI."""
    base, _ = ui
    page.goto(f"{base}/assets/persona_hub", wait_until="networkidle")
    row = page.locator("tr").filter(has=page.get_by_text("dedup_funnel", exact=True))
    sync_api.expect(row).to_have_count(1)
    row.get_by_text("[Show Markdown]").click()
    image = page.locator('img[src^="data:image/svg+xml;base64,"]').last
    sync_api.expect(image).to_be_visible()
    sync_api.expect(image).to_have_attribute("alt", "dedup funnel")
    assert image.evaluate("img => img.complete && img.naturalWidth") > 0  # decoded, not broken
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "persona-hub-funnel.png"), full_page=True)
