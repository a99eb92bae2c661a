"""`make retract BATCH=...`: take a batch back out, every row and export derived from it, and
replay the hub from its place (:func:`personahub_assets.hub_jobs.retract`)."""

from __future__ import annotations

import argparse
import logging
import sys

from dagster import DagsterInstance

from personahub_assets.definitions import build_resources
from personahub_assets.hub_jobs import retract, summary
from personahub_assets.settings import SETTINGS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", required=True, help="key of the batch to retract")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    resources = build_resources(SETTINGS)
    try:
        with DagsterInstance.get() as instance:
            retraction = retract(args.batch, resources["warehouse"], resources["embeddings"],
                                 instance)
    except KeyError as exc:
        sys.stderr.write(f"{exc.args[0]}\n")
        return 2
    sys.stdout.write(summary(retraction) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
