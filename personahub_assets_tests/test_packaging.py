"""Packaging: the extras resolve against the project's pins (constraints.txt).

vLLM pins torch exactly, so the `vllm` extra and the torch that `make install` puts in must
agree. The pin lives in constraints.txt, which the Makefile passes to every install.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"

# What pip says when it cannot reach a package index at all (DNS, refused, no route, proxy).
NO_INDEX = re.compile(
    r"NewConnectionError|NameResolutionError|Failed to establish a new connection"
    r"|Temporary failure in name resolution|Name or service not known|Network is unreachable"
    r"|No route to host|ConnectTimeoutError|ProxyError|Max retries exceeded")
# What pip says when the pins cannot all hold: never a reason to skip.
IMPOSSIBLE = re.compile(r"ResolutionImpossible|conflicting dependencies|Cannot install")


def _pins() -> dict[str, Requirement]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = req
    return pins


def _exact(req: Requirement) -> Version:
    [spec] = req.specifier
    assert spec.operator == "==", f"{req} should pin one version"
    return Version(spec.version)


def _vllm_extra() -> Requirement:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    [req] = [Requirement(r) for r in extras["vllm"]]
    return req


def test_the_torch_pin_lives_in_the_constraints_and_every_install_uses_them():
    assert "torch" in _pins()
    _exact(_pins()["torch"])
    makefile = (ROOT / "Makefile").read_text()
    assert not re.search(r"torch\s*[=<>~]=", makefile), "the torch version belongs in constraints"
    for line in makefile.splitlines():
        if "pip install" in line and "--upgrade pip" not in line:
            assert "-c constraints.txt" in line, line
    assert "$(PIP_INSTALL)" in makefile


@pytest.mark.slow
def test_the_vllm_extra_resolves_with_the_project_pins(tmp_path):
    if sys.version_info < (3, 11):
        pytest.skip("vLLM needs Python >= 3.11")
    if os.environ.get("PIP_NO_INDEX", "").lower() in {"1", "true", "yes", "on"}:
        pytest.skip("no package index: PIP_NO_INDEX is set")
    vllm = _vllm_extra()
    torch_pin = _exact(_pins()["torch"])
    report = tmp_path / "report.json"
    # Not --ignore-installed: a torch already installed under the pin is kept, as it would be
    # by `pip install -c constraints.txt '.[vllm]'` in this environment (and no torch wheel is
    # downloaded just to read its metadata).
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--report", str(report),
           "--disable-pip-version-check", "--no-input", "--retries", "2", "--timeout", "30",
           "-c", str(CONSTRAINTS), f"{ROOT}[vllm]"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    # pip warns about every empty local index it was configured with: noise, not the story.
    out = "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                    if not line.startswith("WARNING: Location"))
    if done.returncode != 0:
        if IMPOSSIBLE.search(out):
            pytest.fail(f"`.[vllm]` cannot resolve with constraints.txt:\n{out[-4000:]}")
        unreachable = NO_INDEX.search(out)
        if unreachable:
            line = next(x for x in out.splitlines() if unreachable.group(0) in x)
            pytest.skip(f"no package index is reachable: {line.strip()[:300]}")
        pytest.fail(f"pip could not resolve `.[vllm]` (rc {done.returncode}):\n{out[-4000:]}")

    planned = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    assert planned.get("vllm") and Version(planned["vllm"]) in vllm.specifier, planned
    # Not in the plan: already installed, and kept.
    torch = Version(planned.get("torch") or metadata.version("torch"))
    # 2.13.0+cpu is the pinned 2.13.0: the local label names the build, not the release.
    assert Version(torch.public) == torch_pin, (
        f"`.[vllm]` resolves to torch {torch}, not the pinned {torch_pin}")
