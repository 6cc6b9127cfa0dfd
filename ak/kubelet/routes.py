"""The kubelet API's paths and query parameters, parsed into plain values.

Pure: a (method, target) pair in, a route or an ``HTTPProblem`` out. The
paths and parameter names are the ones kube-apiserver builds
(pkg/registry/core/pod/strategy.go) and the kubelet serves
(pkg/kubelet/server/server.go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit

from ak.kubelet.channels import parse_ports


class HTTPProblem(Exception):
    """Answer the request with ``status`` and a Status body carrying ``message``."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason or _REASONS.get(status, "")


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    422: "Invalid",
    500: "InternalError",
    502: "InternalError",
    503: "ServiceUnavailable",
}

Query = dict[str, list[str]]


@dataclass(frozen=True)
class Simple:
    """An endpoint without parameters: healthz, pods, runningpods, stats, metrics."""

    name: str


@dataclass(frozen=True)
class PodRef:
    namespace: str
    pod: str
    uid: str | None = None


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    since_seconds: int | None = None
    since_time: str | None = None
    tail_lines: int | None = None
    limit_bytes: int | None = None
    stream: str | None = None

    def remote_params(self, container: str) -> dict[str, str]:
        """The same options as query parameters of the pods/log subresource."""
        params = {"container": container}
        for name, on in (
            ("follow", self.follow),
            ("previous", self.previous),
            ("timestamps", self.timestamps),
        ):
            if on:
                params[name] = "true"
        for name, value in (
            ("sinceSeconds", self.since_seconds),
            ("sinceTime", self.since_time),
            ("tailLines", self.tail_lines),
            ("limitBytes", self.limit_bytes),
            ("stream", self.stream),
        ):
            if value is not None:
                params[name] = str(value)
        return params


@dataclass(frozen=True)
class ContainerLogs:
    pod: PodRef
    container: str
    options: LogOptions


@dataclass(frozen=True)
class StreamOptions:
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False

    def remote_params(self) -> list[tuple[str, str]]:
        return [
            ("stdin", _tf(self.stdin)),
            ("stdout", _tf(self.stdout)),
            ("stderr", _tf(self.stderr)),
            ("tty", _tf(self.tty)),
        ]


def _tf(value: bool) -> str:
    return "true" if value else "false"


@dataclass(frozen=True)
class Exec:
    """``/exec`` (command given) or ``/attach`` (command empty)."""

    pod: PodRef
    container: str
    options: StreamOptions
    command: tuple[str, ...] = ()
    attach: bool = False


@dataclass(frozen=True)
class PortForward:
    pod: PodRef
    ports: tuple[int, ...] = field(default=())  # WebSocket clients name them in the query


Route = Simple | ContainerLogs | Exec | PortForward

_SIMPLE = {
    "/healthz": "healthz",
    "/pods": "pods",
    "/pods/": "pods",
    "/runningpods": "runningpods",
    "/runningpods/": "runningpods",
    "/stats/summary": "stats",
    "/stats/summary/": "stats",
    "/metrics/resource": "metrics-resource",
}
_STREAMING_METHODS = ("GET", "POST")


def parse(method: str, target: str) -> Route:
    """Route one request; raises HTTPProblem (404, 405, 400, 422)."""
    split = urlsplit(target)
    path = split.path
    query = parse_qs(split.query, keep_blank_values=True)
    if path in _SIMPLE:
        if method not in ("GET", "HEAD"):
            raise HTTPProblem(405, f"method {method} not allowed on {path}")
        return Simple(_SIMPLE[path])
    parts = [unquote(p) for p in path.split("/")[1:]]
    if not parts or any(p == "" for p in parts[1:]):
        raise HTTPProblem(404, f"no such endpoint: {path}")
    head, rest = parts[0], parts[1:]
    if head == "containerLogs":
        if method not in ("GET", "HEAD"):
            raise HTTPProblem(405, f"method {method} not allowed on /containerLogs")
        if len(rest) != 3:
            raise HTTPProblem(
                404, "containerLogs wants /containerLogs/{namespace}/{pod}/{container}"
            )
        ns, pod, container = rest
        return ContainerLogs(PodRef(ns, pod), container, log_options(query))
    if head in ("exec", "attach"):
        if method not in _STREAMING_METHODS:
            raise HTTPProblem(405, f"method {method} not allowed on /{head}")
        if len(rest) == 3:
            ref, container = PodRef(rest[0], rest[1]), rest[2]
        elif len(rest) == 4:
            ref, container = PodRef(rest[0], rest[1], rest[2]), rest[3]
        else:
            raise HTTPProblem(
                404, f"{head} wants /{head}/{{namespace}}/{{pod}}[/{{uid}}]/{{container}}"
            )
        options = stream_options(query)
        command = tuple(query.get("command", []))
        if head == "exec" and not command:
            raise HTTPProblem(400, "exec: no command given")
        return Exec(ref, container, options, command, attach=head == "attach")
    if head == "portForward":
        if method not in _STREAMING_METHODS:
            raise HTTPProblem(405, f"method {method} not allowed on /portForward")
        if len(rest) not in (2, 3):
            raise HTTPProblem(404, "portForward wants /portForward/{namespace}/{pod}[/{uid}]")
        ref = PodRef(rest[0], rest[1], rest[2] if len(rest) == 3 else None)
        ports: tuple[int, ...] = ()
        if query.get("port"):
            try:
                ports = tuple(p for value in query["port"] for p in parse_ports(value))
            except ValueError as e:
                raise HTTPProblem(400, f"portForward: {e}") from None
        return PortForward(ref, ports)
    raise HTTPProblem(404, f"no such endpoint: {path}")


def _flag(query: Query, *names: str) -> bool:
    """kube-apiserver sends ``1``/``true`` only when set; anything else is false."""
    return any(v.lower() in ("1", "true") for n in names for v in query.get(n, []))


def stream_options(query: Query) -> StreamOptions:
    stdin = _flag(query, "input", "stdin")
    stdout = _flag(query, "output", "stdout")
    stderr = _flag(query, "error", "stderr")
    tty = _flag(query, "tty")
    if tty and stderr:
        stderr = False  # a terminal merges stderr into stdout (kubelet does the same)
    if not (stdin or stdout or stderr):
        raise HTTPProblem(400, "you must specify at least 1 of stdin, stdout, stderr")
    return StreamOptions(stdin, stdout, stderr, tty)


def _one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _int(query: Query, name: str, minimum: int) -> int | None:
    text = _one(query, name)
    if text is None or text == "":
        return None
    if not re.fullmatch(r"[+-]?\d+", text):
        raise HTTPProblem(400, f"{name}: {text!r} is not an integer")
    value = int(text)
    if value < minimum:
        raise HTTPProblem(422, f"{name}: must be greater than or equal to {minimum}")
    return value


def log_options(query: Query) -> LogOptions:
    tail = _int(query, "tailLines", 0)
    legacy_tail = _one(query, "tail")
    if tail is None and legacy_tail not in (None, "", "all"):
        tail = _int(query, "tail", 0)
    since_seconds = _int(query, "sinceSeconds", 1)
    since_time = _one(query, "sinceTime") or None
    if since_time is not None:
        try:
            datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPProblem(400, f"sinceTime: {since_time!r} is not an RFC 3339 time") from None
    if since_seconds is not None and since_time is not None:
        raise HTTPProblem(422, "at most one of sinceTime or sinceSeconds may be specified")
    stream = _one(query, "stream") or None
    if stream is not None and stream not in ("All", "Stdout", "Stderr"):
        raise HTTPProblem(422, f"stream: {stream!r} is not one of All, Stdout, Stderr")
    return LogOptions(
        follow=_flag(query, "follow"),
        previous=_flag(query, "previous"),
        timestamps=_flag(query, "timestamps"),
        since_seconds=since_seconds,
        since_time=since_time,
        tail_lines=tail,
        limit_bytes=_int(query, "limitBytes", 1),
        stream=stream,
    )
