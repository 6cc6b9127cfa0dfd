"""The ``ak`` command: ``ak run``, ``ak doctor``, ``ak config``, ``ak version``.

A mistake by the user (a bad flag, file or environment variable) is one line
on stderr, ``ak: error: <what and where>``, and exit code 2: operators read it
in ``kubectl logs`` or the journal, where a traceback buries the cause.
Anything else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import MISSING
from typing import Any, NoReturn, TypeVar

from ak import __version__
from ak.config import (
    CONFIG_ENV,
    CONFIG_FLAG,
    SETTINGS,
    Config,
    builtin_default,
    flatten,
    load_config,
    precedence_doc,
)
from ak.errors import ConfigError

log = logging.getLogger(__name__)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class _Exit(Exception):
    """argparse finished early (``--help``, ``--version``): exit with this status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """Errors become ConfigError (one line, exit 2) instead of a usage dump and sys.exit.

    Abbreviations are off: ``--node`` silently meaning ``--node-name`` today
    breaks when a ``--node-ip`` flag is added tomorrow.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise _Exit(status)


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    # Every default is None, meaning "not given": load_config then looks at the
    # environment, the file and the built-in default, in that order.
    parser.add_argument(
        CONFIG_FLAG, metavar="PATH", help=f"TOML config file [env {CONFIG_ENV}]", default=None
    )
    for s in SETTINGS:
        if s.flag is None:
            continue
        shown = builtin_default(s.key)
        shown = "none" if shown is None else "required" if shown is MISSING else shown
        note = f"[env {s.env}; default {shown}]"
        if s.is_bool:
            parser.add_argument(
                s.flag, action=argparse.BooleanOptionalAction, default=None, help=f"{s.help} {note}"
            )
        else:
            metavar = s.flag[2:].rpartition("-")[2].upper()
            parser.add_argument(s.flag, metavar=metavar, default=None, help=f"{s.help} {note}")


def _parser() -> tuple[_Parser, dict[str, _Parser]]:
    top = _Parser(prog="ak", description="Actual Kubelets: run a local cluster's pods remotely.")
    top.add_argument("--version", action="version", version=f"ak {__version__}")
    sub = top.add_subparsers(dest="command", metavar="{run,doctor,config,version}", required=True)
    epilog = precedence_doc()
    fmt = argparse.RawDescriptionHelpFormatter
    commands = {
        "run": sub.add_parser(
            "run", help="join the local cluster as a node", epilog=epilog, formatter_class=fmt
        ),
        "doctor": sub.add_parser(
            "doctor",
            help="check both clusters, credentials and permissions with the settings of run",
            description="Check, with the same settings as `ak run`, that AK can work: both\n"
            "kubeconfigs, both API servers, every permission AK needs on each, the node\n"
            "name and the local API endpoint remote pods use. One line per check, with a\n"
            "fix under each failure; exit status 0 only if every check passed.",
            epilog=epilog,
            formatter_class=fmt,
        ),
        "config": sub.add_parser(
            "config",
            help="print the effective settings and where each came from",
            epilog=epilog,
            formatter_class=fmt,
        ),
        "version": sub.add_parser("version", help="print the version"),
    }
    _add_setting_flags(commands["run"])
    _add_setting_flags(commands["config"])
    _add_setting_flags(commands["doctor"])
    return top, commands


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is now, so a replaced stream (tests) is never stale."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


class TextFormatter(logging.Formatter):
    """``2026-11-22T02:11:44.123Z INFO ak.node: message``: UTC, sortable, grep-able."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(TextFormatter):
    """One JSON object per line; ``extra=`` fields are kept as keys for log pipelines."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update((k, v) for k, v in vars(record).items() if k not in _STANDARD_ATTRS)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str, fmt: str) -> None:
    """Log to stderr. ``level`` applies to AK's loggers; libraries stay at warning
    or above, since httpx alone logs a line per request at info."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    ak_level = logging.getLevelNamesMapping()[level.upper()]
    root.setLevel(max(ak_level, logging.WARNING))
    logging.getLogger("ak").setLevel(ak_level)


def _run_provider(config: Config) -> int:
    """Start the provider. ``ak.run`` is imported late so that ``ak version`` and
    ``ak config`` work without loading it, and tests replace this function."""
    # Loading ak.run and its libraries takes half a second, in which SIGTERM
    # killed AK by signal: noted meanwhile, it stops AK cleanly once trio listens.
    early: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: early.append(signum))
    try:
        runner: Any = importlib.import_module("ak.run")
        return int(runner.main(config, lambda: bool(early)))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_config(config: Config) -> None:
    values = flatten(config)
    report = {k: {"value": v, "source": config.source.get(k, "default")} for k, v in values.items()}
    print(json.dumps(report, indent=2))


def _main(argv: list[str]) -> int:
    parser, commands = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "version":
        print(f"ak {__version__}")
        return 0
    config = load_config(args, os.environ)
    if args.command == "config":
        _print_config(config)
        return 0
    if args.command == "doctor":
        setup_logging("error", config.log_format)  # the report says it all
        doctor: Any = importlib.import_module("ak.doctor")
        return int(doctor.main(config))
    setup_logging(config.log_level, config.log_format)
    # No "starting" line here: a kubeconfig error must stay the only line printed.
    return _run_provider(config)


E = TypeVar("E", bound=BaseException)


def _sole(exc: BaseException, kind: type[E]) -> E | None:
    """``exc`` if it is a ``kind``, also when wrapped in single-member exception
    groups (as trio's nurseries wrap what a task raises)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, kind) else None


def _fail(error: ConfigError) -> int:
    message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    print(f"ak: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ak`` console script; returns the exit code."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except _Exit as e:
        return e.status
    except ConfigError as e:
        return _fail(e)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseExceptionGroup as group:
        if (config_error := _sole(group, ConfigError)) is not None:
            return _fail(config_error)
        if _sole(group, KeyboardInterrupt) is not None:
            return EXIT_INTERRUPTED
        raise
