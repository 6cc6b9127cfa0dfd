"""Entry point of the frozen ``ak`` binary (build/binary.sh): the same as ``python -m ak``."""

from ak.cli import main

raise SystemExit(main())
