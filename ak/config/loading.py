"""Resolving every setting from flags, environment, the TOML file and defaults."""

from __future__ import annotations

import argparse
import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING
from pathlib import Path
from typing import Any, NamedTuple

from ak.config.settings import _SECTION_CLASSES, DEFAULT_RESOURCES, Config, builtin_default
from ak.config.table import CONFIG_ENV, SETTINGS
from ak.config.validators import _Bad, _show
from ak.errors import ConfigError

_FILE_KEYS = {path: s for s in SETTINGS for path in s.file_paths}
_FILE_SECTIONS = {p.rsplit(".", i)[0] for p in _FILE_KEYS for i in range(1, p.count(".") + 1)}
# section -> the keys it accepts, for "did you mean"
_FILE_NAMES = {
    section: [
        p.rpartition(".")[2]
        for p in (*_FILE_KEYS, *_FILE_SECTIONS)
        if p.rpartition(".")[0] == section
    ]
    for section in ("", *_FILE_SECTIONS)
}
_FILE_HINTS = {
    key: "the remote API server and its credentials come from [remote] kubeconfig"
    for key in ("remote.apiserver_host", "remote.token", "remote.ca_data")
}
_MISSING_NAME = "no node name: pass --node-name, set AK_NODE_NAME or node-name in the config file"


def _snake(key: str) -> str:
    """apiserverHost, apiserver-host and internalIP -> apiserver_host, internal_ip."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).replace("-", "_").lower()


class _FileValue(NamedTuple):
    value: Any
    where: str  # "[node] kubeletPort", for messages about the value
    table: str  # "[node.resources.allocatable]", for messages about one of its entries


def _read_file(path: str) -> dict[str, _FileValue]:
    """Setting key -> what the file says, for every setting the file sets."""
    try:
        text = Path(path).read_bytes().decode()
    except OSError as e:
        raise ConfigError(f"config {path}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        if at:
            msg = f"line {at[1]}, column {at[2]}: {msg[: at.start()]}"
        raise ConfigError(f"config {path}: {msg}") from e

    found: dict[str, _FileValue] = {}

    def walk(table: dict[str, Any], section: str, shown: str) -> None:
        for raw, value in table.items():
            dotted = f"{section}.{_snake(raw)}" if section else _snake(raw)
            here = f"[{shown}] {raw}" if shown else raw
            inner = f"{shown}.{raw}" if shown else raw
            if dotted in _FILE_SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"config {path}: {here}: {_show(value)} is not a table")
                walk(value, dotted, inner)
            elif dotted in _FILE_KEYS:
                key = _FILE_KEYS[dotted].key
                if key in found:
                    raise ConfigError(
                        f"config {path}: {here}: set twice (also as {found[key].where})"
                    )
                found[key] = _FileValue(value, here, f"[{inner}]")
            else:
                close = difflib.get_close_matches(_snake(raw), _FILE_NAMES[section], n=1)
                hint = _FILE_HINTS.get(dotted) or (f"did you mean {close[0]!r}?" if close else "")
                raise ConfigError(
                    f"config {path}: {f'[{shown}]' if shown else 'top level'}: unknown key "
                    + repr(raw)
                    + (f" ({hint})" if hint else "")
                )

    walk(doc, "", "")
    return found


def _flags(args: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    """Flag values by argparse dest; None means "not given"."""
    values = dict(vars(args) if isinstance(args, argparse.Namespace) else args)
    dests = {s.dest for s in SETTINGS if s.dest} | {"config"}
    if not isinstance(args, argparse.Namespace):
        unknown = sorted(set(values) - dests)
        if unknown:  # a caller's typo, not a user's: fail loudly
            raise TypeError(f"load_config: unknown argument {unknown[0]!r}")
    return {k: v for k, v in values.items() if k in dests and v is not None}


def load_config(args: argparse.Namespace | Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """Resolve every setting from flags, environment, file and defaults.

    ``args`` is the argparse result of ``ak run``/``ak config`` or a plain
    mapping of the same attribute names (``{"node_name": "vk"}``); None
    values count as not given. ``environ`` is usually ``os.environ``.
    Raises ConfigError with a one-line message.
    """
    flags = _flags(args)
    env = {k: v for k, v in environ.items() if v != ""}
    file: dict[str, _FileValue] = {}
    config_path = flags.get("config") or env.get(CONFIG_ENV)
    if config_path:
        file = _read_file(config_path)

    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for s in SETTINGS:
        if s.dest and s.dest in flags:
            raw, where, label = flags[s.dest], s.flag, f"flag {s.flag}"
        elif s.env and s.env in env:
            raw, where, label = env[s.env], s.env, f"env {s.env}"
        elif s.key in file:
            raw, loc = file[s.key].value, file[s.key].where
            where, label = f"config {config_path}: {loc}", f"file {config_path} {loc}"
        else:
            values[s.key], source[s.key] = builtin_default(s.key), "default"
            continue
        try:
            values[s.key] = s.convert(raw)
        except _Bad as e:
            if e.entry is not None:  # only file values are maps
                where = f"config {config_path}: {file[s.key].table} {e.entry}"
            raise ConfigError(f"{where}: {e}") from None
        source[s.key] = label

    if values["node.name"] is MISSING:
        raise ConfigError(_MISSING_NAME)
    cert, key = values["kubelet.tls_cert_file"], values["kubelet.tls_private_key_file"]
    if (cert is None) != (key is None):
        given = "tls_cert_file" if cert else "tls_private_key_file"
        raise ConfigError(
            f"{source[f'kubelet.{given}']}: --tls-cert-file and --tls-private-key-file "
            "go together; set both or neither"
        )
    _fill_resources(values, source)
    return _build(values, source)


def _fill_resources(values: dict[str, Any], source: dict[str, str]) -> None:
    """Merge resource maps over the defaults; a missing one copies the other."""
    cap_set = source["node.capacity"] != "default"
    alloc_set = source["node.allocatable"] != "default"
    if alloc_set and not cap_set:
        values["node.capacity"] = values["node.allocatable"]
        source["node.capacity"] = source["node.allocatable"] + " (capacity = allocatable)"
    elif cap_set and not alloc_set:
        values["node.allocatable"] = values["node.capacity"]
        source["node.allocatable"] = source["node.capacity"] + " (allocatable = capacity)"
    for key in ("node.capacity", "node.allocatable"):
        values[key] = {**DEFAULT_RESOURCES, **values[key]}


def _build(values: dict[str, Any], source: dict[str, str]) -> Config:
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTION_CLASSES}
    for key, value in values.items():
        section, _, name = key.rpartition(".")
        sections[section][name] = value
    parts = {name: _SECTION_CLASSES[name](**kw) for name, kw in sections.items() if name}
    return Config(**parts, **sections[""], source=source)
