"""``python -m personahub_assets.report``: the short form of
:mod:`personahub_assets.cli.report`."""

from personahub_assets.cli.report import main

if __name__ == "__main__":
    raise SystemExit(main())
