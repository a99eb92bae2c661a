"""Test set-up: every default path points into a temporary folder, never the repo's data/."""

import os
import tempfile

# Must run before personahub_assets.settings is imported by any test module.
os.environ.setdefault("PERSONAHUB_DATA_DIR", tempfile.mkdtemp(prefix="personahub-test-"))
# pytest-xdist workers inherit the controller's environment, folder included: each gets a
# folder of its own, so that no two share a default warehouse or response cache.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _own = os.path.join(os.environ["PERSONAHUB_DATA_DIR"], os.environ["PYTEST_XDIST_WORKER"])
    os.makedirs(_own, exist_ok=True)
    os.environ["PERSONAHUB_DATA_DIR"] = _own
# Automated runs honour these settings: keep the model's work in the tests small.
os.environ.setdefault("PERSONAHUB_MAX_PERSONAS", "1")
os.environ.setdefault("PERSONAHUB_HOPS", "1")
# Graph-wide tests find persona attributes by rules: a grammar-bound model call per persona
# would dominate their time. test_quality_assets runs the model method on its own.
os.environ.setdefault("PERSONAHUB_ATTRIBUTES_METHOD", "rules")
