"""``python -m personahub_assets.demo``: the short form of
:mod:`personahub_assets.cli.demo`."""

from personahub_assets.cli.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
