"""``python -m ak``: the same entry point as the ``ak`` console script."""

from ak.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
