"""``python -m personahub_assets.cli.distill [--force] [DIR]``: distill the static persona
encoder once (``make install`` and the image build run it)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from personahub_assets.lib.curation.distill import (
    default_static_model_dir,
    distill_static_model,
    ensure_static_model,
    static_model_exists,
)
from personahub_assets.settings import use_offline_hub


def main(argv: Sequence[str] | None = None) -> int:
    """Distill the static model into ``DIR`` (default: ``default_static_model_dir()``), unless
    one is there already and ``--force`` is not given."""
    parser = argparse.ArgumentParser(description="Distill the static persona embedding model "
                                     "from the packaged all-MiniLM-L6-v2 (offline).")
    parser.add_argument("output_dir", nargs="?", help="default: " + str(default_static_model_dir()))
    parser.add_argument("--force", action="store_true", help="distill again over an existing model")
    args = parser.parse_args(argv)
    use_offline_hub()
    target = Path(args.output_dir) if args.output_dir else default_static_model_dir()
    if static_model_exists(target) and not args.force:
        sys.stdout.write(f"static embedding model already in {target}\n")
        return 0
    started = time.perf_counter()
    path = (distill_static_model(target, overwrite=True) if args.force
            else ensure_static_model(target))
    sys.stdout.write(f"static embedding model distilled into {path} in "
                     f"{time.perf_counter() - started:.0f} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
