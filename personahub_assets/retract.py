"""``python -m personahub_assets.retract``: the short form of
:mod:`personahub_assets.cli.retract`."""

from personahub_assets.cli.retract import main

if __name__ == "__main__":
    raise SystemExit(main())
