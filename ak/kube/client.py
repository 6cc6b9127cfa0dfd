"""Requests to one API server: JSON dicts, rate limited and counted.

Everything goes through one HTTP/1.1 engine per cluster (``ak.wire.http1``:
one pool, TLS, timeouts, caps, retries); SPDY and WebSocket upgrades too
(``engine``). Plain requests call it directly (most of AK's CPU is its
requests); streams (watches, logs) through httpx over it
(``ak.wire.httpx_transport``)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import trio

from ak.core import codec
from ak.core.types import Obj
from ak.kube.config import ClusterConfig
from ak.kube.errors import KubeError, Unreachable, api_error
from ak.metrics import API_LATENCY, API_REQUESTS
from ak.wire.http1 import Engine, Response, TransportError
from ak.wire.httpx_transport import EngineTransport

log = logging.getLogger(__name__)


REQUEST_TIMEOUT = 30.0
ERROR_BODY = 1024 * 1024  # the most read of a stream's error answer
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class TokenBucket:
    """Client-side QPS limit, like client-go's flowcontrol: ``qps`` with ``burst``."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.stamp = trio.current_time() if _in_trio() else 0.0
        self.lock = trio.Lock()

    def try_take(self) -> bool:
        """Take a token if one is there now; never waits (for work that may be dropped)."""
        if self.qps <= 0 or math.isinf(self.qps):
            return True
        now = trio.current_time()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.qps)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    async def take(self) -> None:
        if self.qps <= 0 or math.isinf(self.qps):
            return
        async with self.lock:
            now = trio.current_time()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.qps)
            self.stamp = now
            if self.tokens < 1:
                wait = (1 - self.tokens) / self.qps
                await trio.sleep(wait)
                self.stamp = trio.current_time()
                self.tokens = 1
            self.tokens -= 1


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


class KubeClient:
    """A client for one API server. Create inside trio; close with ``aclose``."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        name: str,
        qps: float = 50,
        burst: int = 100,
        max_concurrency: int = 8,
        user_agent: str = "actual-kubelets",
    ) -> None:
        self.config = config
        self.name = name
        self.bucket = TokenBucket(qps, burst)
        self.counts: Counter[tuple[str, int]] = Counter()
        self._limiter = trio.CapacityLimiter(max_concurrency)
        self._fixed_headers = {
            "User-Agent": user_agent,
            "Accept": "application/json",
            "Accept-Encoding": "gzip" if config.compression else "identity",
        }
        # One pool for all: plain requests use at most max_concurrency connections
        # at once, watches (each holding one for minutes) any number.
        self.engine = Engine(
            config.server,
            config.ssl_context,
            server_hostname=config.tls_server_name,
            max_idle=max_concurrency,
            connect_timeout=10,
        )
        self._streams = httpx.AsyncClient(
            base_url=config.server,
            timeout=httpx.Timeout(30, connect=10),
            headers=self._fixed_headers,
            trust_env=False,
            transport=EngineTransport(self.engine),
        )

    async def aclose(self) -> None:
        await self._streams.aclose()
        await self.engine.aclose()

    def _count(self, verb: str, code: int, request_path: str) -> None:
        self.counts[(verb, code)] += 1
        API_REQUESTS.labels(self.name, verb, resource_of(request_path), str(code)).inc()

    async def _headers(self) -> dict[str, str]:
        token = self.config.token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str],
        content: bytes | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request HTTP timeout, not a cancel scope
    ) -> Response:
        """One request and its whole body; transport failures become ``Unreachable``."""
        target = path + ("?" + query(params) if params else "")
        try:
            async with self._limiter:
                resp = await self.engine.request(
                    method,
                    target,
                    {**self._fixed_headers, **headers},
                    content,
                    REQUEST_TIMEOUT if timeout is None else timeout,
                )
        except TransportError as e:
            self._count(method, 0, path)
            raise Unreachable(f"{self.name} API server {self.config.server}", e) from e
        self._count(method, resp.status_code, path)
        return resp

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request HTTP timeout, not a cancel scope
    ) -> Obj:
        await self.bucket.take()
        headers = await self._headers()
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = codec.dumps(body)
        started = trio.current_time()
        resp = await self._send(
            method, path, params=params, headers=headers, content=content, timeout=timeout
        )
        API_LATENCY.labels(self.name, method).observe(trio.current_time() - started)
        try:
            data = codec.loads(resp.content) if resp.content else {}
        except ValueError:
            data = resp.text
        if resp.status_code >= 400:
            raise api_error(resp.status_code, data)
        if not isinstance(data, dict):
            raise KubeError(f"{method} {path}: unexpected response {str(data)[:200]}")
        return data

    async def probe(self, path: str = "/readyz", timeout: float = 5) -> str:  # noqa: ASYNC109
        """GET a plain-text health endpoint; raises like ``request`` on failure."""
        resp = await self._send("GET", path, headers=await self._headers(), timeout=timeout)
        if resp.status_code >= 400:
            raise api_error(resp.status_code, resp.text)
        return resp.text

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Obj:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: Obj) -> Obj:
        return await self.request("POST", path, body=body)

    async def replace(self, path: str, body: Obj) -> Obj:
        return await self.request("PUT", path, body=body)

    async def patch(self, path: str, body: Any, content_type: str = MERGE) -> Obj:
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def delete(self, path: str, body: Obj | None = None) -> Obj:
        return await self.request("DELETE", path, body=body)

    @asynccontextmanager
    async def stream(
        self, path: str, params: dict[str, Any] | None = None, read_timeout: float | None = None
    ) -> AsyncIterator[httpx.Response]:
        """A streaming GET (watch, logs). Errors are raised before the body is read."""
        await self.bucket.take()
        headers = await self._headers()
        timeout = httpx.Timeout(30, connect=10, read=read_timeout)
        try:
            async with self._streams.stream(
                "GET", path, params=params, headers=headers, timeout=timeout
            ) as resp:
                self._count(
                    "WATCH" if params and params.get("watch") else "STREAM", resp.status_code, path
                )
                if resp.status_code >= 400:
                    raw = bytearray()
                    async for piece in resp.aiter_bytes():
                        raw += piece
                        if len(raw) > ERROR_BODY:
                            break  # a stream has no body cap: what an error says fits in this
                    try:
                        data: Any = codec.loads(raw)
                    except ValueError:
                        data = raw.decode(errors="replace")
                    raise api_error(resp.status_code, data)
                yield resp
        except httpx.TransportError as e:
            raise Unreachable(f"{self.name} API server {self.config.server}", e) from e


def query(params: dict[str, Any]) -> str:
    """A query string as httpx writes one: booleans as true/false."""
    return urlencode(
        {k: ("true" if v else "false") if isinstance(v, bool) else v for k, v in params.items()}
    )


def path(
    resource: str,
    *,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
    group_version: str = "v1",
) -> str:
    """The REST path of a resource: ``path("pods", namespace="a", name="b")``."""
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    parts = [base]
    if namespace is not None:
        parts.append(f"namespaces/{namespace}")
    parts.append(resource)
    if name is not None:
        parts.append(name)
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


def resource_of(request_path: str) -> str:
    """The resource (and subresource) a REST path names, for metrics:
    ``/api/v1/namespaces/a/pods/b/status`` -> ``pods/status``."""
    parts = request_path.split("?", 1)[0].strip("/").split("/")
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return "other"
    if rest[:1] == ["namespaces"] and len(rest) > 2 and rest[2] not in ("status", "finalize"):
        rest = rest[2:]
    if not rest or not rest[0]:
        return "other"
    return "/".join(rest[:1] + rest[2:3])
