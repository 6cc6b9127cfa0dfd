"""AK's own HTTP endpoints, apart from the kubelet port: /metrics, /healthz, /readyz.

A tiny ASGI app served by hypercorn on trio; the probes are what a Deployment's
liveness and readiness checks and systemd operators look at.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ak.metrics import REGISTRY

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def make_app(
    healthy: Callable[[], bool], ready: Callable[[], bool]
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        route = scope.get("path", "")
        if route == "/metrics":
            status, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        elif route in ("/healthz", "/livez"):
            ok = healthy()
            status, ctype, body = (200 if ok else 500), "text/plain", b"ok" if ok else b"unhealthy"
        elif route == "/readyz":
            ok = ready()
            status, ctype, body = (200 if ok else 503), "text/plain", b"ok" if ok else b"not ready"
        else:
            status, ctype, body = 404, "text/plain", b"not found"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", ctype.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def serve_metrics(
    port: int, healthy: Callable[[], bool], ready: Callable[[], bool], host: str = "0.0.0.0"
) -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("ak.metrics_server")
    log.info("metrics and health endpoints on %s:%d", host, port)
    await serve(make_app(healthy, ready), config, shutdown_trigger=trio.sleep_forever)  # type: ignore[arg-type]
