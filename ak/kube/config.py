"""Connection settings for one API server, loaded with the `kubernetes` package.

Only the loaders are used (contexts, exec plugins, tokens, client certs,
in-cluster); requests go through ak.wire.http1. The loaders block (exec plugins run
subprocesses), so callers in trio run them in a thread.
"""

from __future__ import annotations

import ssl
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ak.errors import ConfigError

TokenSource = Callable[[], str | None]


@dataclass(frozen=True)
class ClusterConfig:
    """Where an API server is and how to authenticate to it."""

    server: str
    ssl_context: ssl.SSLContext
    token: TokenSource
    source: str
    ca_file: str | None = None  # the CA bundle the server is verified with, if one was named
    # kubeconfig's tls-server-name: the name the serving certificate is checked
    # against (and sent as SNI) when the server is reached by another address,
    # e.g. through an SSH tunnel from a bastion host.
    tls_server_name: str | None = None
    # kubeconfig's disable-compression: responses unzipped on the wire (gzip
    # costs CPU on both ends; worth it on every network measured, loopback too).
    compression: bool = True

    def describe(self) -> str:
        return f"{self.server} (from {self.source})"


def _configuration() -> Any:
    from kubernetes.client import Configuration

    conf = Configuration()
    conf.temp_folder_path = tempfile.gettempdir()
    return conf


def _ssl_context(conf: Any, source: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=conf.ssl_ca_cert or None)
    if not conf.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if conf.cert_file:
        try:
            ctx.load_cert_chain(conf.cert_file, conf.key_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"{source}: cannot load client certificate: {e}") from e
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _token_source(conf: Any) -> TokenSource:
    def current() -> str | None:
        hook = conf.refresh_api_key_hook
        if hook is not None:
            hook(conf)
        value = conf.api_key.get("BearerToken") or conf.api_key.get("authorization")
        if not value:
            return None
        text = str(value).strip()
        # kubeconfig tokens come bare or as "Bearer x"; the in-cluster loader
        # writes "bearer x" (lower case). Sent as it was, that made every
        # in-cluster request "Bearer bearer x": 401 for AK run as a pod.
        scheme, _, rest = text.partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest else text

    return current


def _regular_file(path: str) -> Path:
    """``path`` if it is a regular file, else a ConfigError saying what it is
    (a directory was "no such file", which sent users looking for a typo)."""
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"kubeconfig {path}: no such file") from None
    except OSError as e:  # a path through a file, a loop of links, no permission
        reason = (e.strerror or str(e)).lower()
        raise ConfigError(f"kubeconfig {path}: {reason}") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"kubeconfig {path}: is a directory, not a file")
    if not stat.S_ISREG(mode):
        # A pipe (`--local-kubeconfig <(...)`) would be read twice: see _cluster_field.
        raise ConfigError(f"kubeconfig {path}: not a regular file")
    return p


def load_kubeconfig(path: str, context: str | None = None) -> ClusterConfig:
    """Load a kubeconfig file; raises ConfigError with a one-line reason."""
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import load_kube_config

    p = _regular_file(path)
    conf = _configuration()
    try:
        load_kube_config(
            config_file=str(p), context=context, client_configuration=conf, persist_config=False
        )
    except ConfigException as e:
        raise ConfigError(f"kubeconfig {path}: {e}") from e
    except OSError as e:  # unreadable: not "invalid"
        raise ConfigError(f"kubeconfig {path}: cannot read it: {e.strerror or e}") from e
    except Exception as e:  # YAML errors, missing keys: all user errors here
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"kubeconfig {path}: invalid ({reason})") from e
    source = f"kubeconfig {path}" + (f" context {context}" if context else "")
    if getattr(conf, "proxy", None):
        # Ignoring it would send AK straight to an address the user reaches only
        # through the proxy: refused, with a reason, instead of timeouts later.
        raise ConfigError(
            f"{source}: proxy-url ({conf.proxy}) is not supported; reach the API server "
            "directly or through a tunnel (tls-server-name is honoured)"
        )
    return ClusterConfig(
        conf.host.rstrip("/"),
        _ssl_context(conf, source),
        _token_source(conf),
        source,
        conf.ssl_ca_cert or None,
        getattr(conf, "tls_server_name", None) or None,
        not _cluster_field(p, context, "disable-compression"),
    )


def _cluster_field(path: Path, context: str | None, field: str) -> Any:
    """A field of the context's cluster that the `kubernetes` loader does not read.

    Called after the loader accepted the file, so its shape is known good."""
    import yaml

    doc = yaml.safe_load(path.read_text()) or {}
    wanted = context or doc.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or []}
    cluster = contexts.get(wanted, {}).get("cluster")
    for entry in doc.get("clusters") or []:
        if entry.get("name") == cluster:
            return (entry.get("cluster") or {}).get(field)
    return None


def load_incluster() -> ClusterConfig:
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import load_incluster_config

    conf = _configuration()
    try:
        load_incluster_config(client_configuration=conf)
    except ConfigException as e:
        raise ConfigError(f"in-cluster config: {e}") from e
    source = "in-cluster service account"
    return ClusterConfig(
        conf.host.rstrip("/"),
        _ssl_context(conf, source),
        _token_source(conf),
        source,
        conf.ssl_ca_cert or None,
    )


def load(path: str | None, context: str | None = None) -> ClusterConfig:
    return load_kubeconfig(path, context) if path else load_incluster()
