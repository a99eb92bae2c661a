"""``python -m personahub_assets.update``: the short form of
:mod:`personahub_assets.cli.update`."""

from personahub_assets.cli.update import main

if __name__ == "__main__":
    raise SystemExit(main())
