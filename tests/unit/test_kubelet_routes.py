"""Kubelet API routing, query parsing and the authorization mapping."""

from __future__ import annotations

import pytest

from ak.kubelet import authz, routes
from ak.kubelet.routes import HTTPProblem


def problem(method: str, target: str) -> HTTPProblem:
    with pytest.raises(HTTPProblem) as info:
        routes.parse(method, target)
    return info.value


def test_simple_endpoints() -> None:
    for target, name in [
        ("/healthz", "healthz"),
        ("/pods", "pods"),
        ("/pods/", "pods"),
        ("/runningpods/", "runningpods"),
        ("/stats/summary", "stats"),
        ("/stats/summary?only_cpu_and_memory=true", "stats"),
        ("/metrics/resource", "metrics-resource"),
    ]:
        assert routes.parse("GET", target) == routes.Simple(name)
    assert problem("POST", "/pods").status == 405
    assert problem("GET", "/configz").status == 404
    assert problem("GET", "/pods//x").status == 404


def test_container_logs_with_every_option() -> None:
    route = routes.parse(
        "GET",
        "/containerLogs/ns/p%2Ex/c?follow=true&previous=1&timestamps=true&sinceSeconds=10"
        "&tailLines=5&limitBytes=100&stream=Stdout",
    )
    assert isinstance(route, routes.ContainerLogs)
    assert route.pod == routes.PodRef("ns", "p.x")
    assert route.options.remote_params("c") == {
        "container": "c",
        "follow": "true",
        "previous": "true",
        "timestamps": "true",
        "sinceSeconds": "10",
        "tailLines": "5",
        "limitBytes": "100",
        "stream": "Stdout",
    }
    since = routes.parse("GET", "/containerLogs/ns/p/c?sinceTime=2026-01-01T00:00:05Z")
    assert isinstance(since, routes.ContainerLogs)
    assert since.options.since_time == "2026-01-01T00:00:05Z"
    legacy = routes.parse("GET", "/containerLogs/ns/p/c?tail=3")
    assert isinstance(legacy, routes.ContainerLogs) and legacy.options.tail_lines == 3
    every = routes.parse("GET", "/containerLogs/ns/p/c?tail=all")
    assert isinstance(every, routes.ContainerLogs) and every.options.tail_lines is None


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("tailLines=x", 400),
        ("tailLines=-1", 422),
        ("sinceSeconds=0", 422),
        ("limitBytes=0", 422),
        ("sinceTime=yesterday", 400),
        ("sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z", 422),
        ("stream=Both", 422),
    ],
)
def test_bad_log_options(query: str, status: int) -> None:
    assert problem("GET", f"/containerLogs/ns/p/c?{query}").status == status


def test_exec_and_attach() -> None:
    route = routes.parse("POST", "/exec/ns/p/c?command=sh&command=-c&command=a+b&input=1&output=1")
    assert route == routes.Exec(
        routes.PodRef("ns", "p"),
        "c",
        routes.StreamOptions(stdin=True, stdout=True),
        ("sh", "-c", "a b"),
    )
    with_uid = routes.parse("GET", "/exec/ns/p/uid-1/c?command=ls&error=1&tty=1&output=1")
    assert isinstance(with_uid, routes.Exec)
    assert with_uid.pod.uid == "uid-1"
    assert with_uid.options == routes.StreamOptions(stdout=True, tty=True)  # tty drops stderr
    attach = routes.parse("POST", "/attach/ns/p/c?output=1")
    assert isinstance(attach, routes.Exec) and attach.attach and attach.command == ()
    assert problem("POST", "/exec/ns/p/c?output=1").status == 400  # no command
    assert problem("POST", "/exec/ns/p/c?command=ls").status == 400  # no stream
    assert problem("PUT", "/exec/ns/p/c?command=ls&output=1").status == 405
    assert problem("POST", "/exec/ns/p").status == 404


def test_port_forward() -> None:
    assert routes.parse("POST", "/portForward/ns/p") == routes.PortForward(routes.PodRef("ns", "p"))
    route = routes.parse("GET", "/portForward/ns/p/uid?port=80,8080&port=9090")
    assert route == routes.PortForward(routes.PodRef("ns", "p", "uid"), (80, 8080, 9090))
    assert problem("GET", "/portForward/ns/p?port=0").status == 400


def test_stream_options_to_remote_query() -> None:
    options = routes.StreamOptions(stdin=True, stdout=True, tty=True)
    assert options.remote_params() == [
        ("stdin", "true"),
        ("stdout", "true"),
        ("stderr", "false"),
        ("tty", "true"),
    ]


@pytest.mark.parametrize(
    ("method", "path", "verb", "subresources"),
    [
        ("GET", "/stats/summary", "get", ("stats",)),
        ("GET", "/stats", "get", ("stats",)),
        ("GET", "/metrics/resource", "get", ("metrics",)),
        ("GET", "/metrics", "get", ("metrics",)),
        ("GET", "/logs/syslog", "get", ("log",)),
        ("GET", "/spec/", "get", ("spec",)),
        ("GET", "/pods", "get", ("pods", "proxy")),
        ("GET", "/healthz", "get", ("healthz", "proxy")),
        ("GET", "/configz", "get", ("configz", "proxy")),
        ("GET", "/containerLogs/ns/p/c", "get", ("proxy",)),
        ("POST", "/exec/ns/p/c?command=ls", "create", ("proxy",)),
        ("GET", "/exec/ns/p/c?command=ls", "get", ("proxy",)),
        ("POST", "/portForward/ns/p", "create", ("proxy",)),
        ("GET", "/runningpods/", "get", ("proxy",)),
        ("GET", "/statsx", "get", ("proxy",)),
        ("PUT", "/x", "update", ("proxy",)),
        ("PATCH", "/x", "patch", ("proxy",)),
        ("DELETE", "/x", "delete", ("proxy",)),
    ],
)
def test_authorization_mapping(
    method: str, path: str, verb: str, subresources: tuple[str, ...]
) -> None:
    wanted = authz.required(method, path, "node-1")
    assert [(a.verb, a.subresource, a.name) for a in wanted] == [
        (verb, s, "node-1") for s in subresources
    ]
    assert wanted[0].review_spec()["resource"] == "nodes"
