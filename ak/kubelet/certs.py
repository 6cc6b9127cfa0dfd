"""The kubelet port's serving certificate and TLS settings.

Either files given in the configuration (read at start), or a certificate the
local cluster signs through a CertificateSigningRequest with signer
``kubernetes.io/kubelet-serving``, subject CN=system:node:<node>,
O=system:nodes and the node's addresses as SANs, as a kubelet with
``serverTLSBootstrap`` does. Such CSRs are never approved automatically: AK
logs what to run while it waits, and renews at 70-90 % of the certificate's
lifetime, serving the old one until the new one arrives.

Client certificates are requested and verified against the local cluster's
client CA. (A certificate from another CA fails the TLS handshake: Python's
ssl module offers no way to request a certificate without verifying it.)
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import os
import random
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ak.core.kubelet_status import certificate_failed, certificate_pending
from ak.core.x509names import subject
from ak.kube.client import KubeClient
from ak.kube.errors import KubeError, NotFound
from ak.kubelet.health import KubeletAPIHealth

log = logging.getLogger(__name__)

SIGNER = "kubernetes.io/kubelet-serving"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
CURRENT_FILE = "kubelet-server-current.pem"


@dataclass(frozen=True)
class TLSSettings:
    node_name: str
    addresses: tuple[str, ...]  # IPs and host names for the SANs
    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    cert_dir: str | None = None  # where a CSR-issued certificate is kept across restarts
    expiration_seconds: int | None = None  # asked of the signer; None = its default


def server_context(cert_file: str, key_file: str, client_ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca_file:
        ctx.load_verify_locations(cafile=client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    # The API server forces http/1.1 for upgrades and would pick h2 for plain
    # requests if offered; we serve HTTP/1.1 only.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def csr_pem(key: ec.EllipticCurvePrivateKey, node_name: str, addresses: tuple[str, ...]) -> bytes:
    sans: list[x509.GeneralName] = []
    for a in addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(a)))
        except ValueError:
            sans.append(x509.DNSName(a))
    # Over 64 characters for node names over 52: see ak.core.x509names.
    name = subject(f"system:node:{node_name}", ("system:nodes",))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def renewal_time(cert: x509.Certificate, rng: random.Random | None = None) -> dt.datetime:
    """A jittered point at 70-90 % of the validity period (the kubelet's rule)."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    fraction = 0.7 + 0.2 * (rng or random).random()
    return start + (end - start) * fraction


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


class ServingCertificate:
    """Holds the current SSL context; ``run`` keeps it valid."""

    def __init__(
        self, settings: TLSSettings, local: KubeClient, health: KubeletAPIHealth | None = None
    ) -> None:
        self.s = settings
        self.local = local
        # Told while there is no certificate to serve with: a renewal's troubles
        # are not the node's, the old certificate serves meanwhile.
        self.health = health or KubeletAPIHealth()
        self.ready = trio.Event()
        self._context: ssl.SSLContext | None = None
        self.certificate: x509.Certificate | None = None
        self._dir = Path(settings.cert_dir) if settings.cert_dir else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def context(self) -> ssl.SSLContext:
        if self._context is None:
            raise RuntimeError("no serving certificate yet")
        return self._context

    async def run(self) -> None:
        if self.s.cert_file and self.s.key_file:
            self._load(self.s.cert_file, self.s.key_file)
            log.info("kubelet API: serving certificate from %s", self.s.cert_file)
            await trio.sleep_forever()
        await self._bootstrap()

    def _load(self, cert_file: str, key_file: str) -> None:
        self._context = server_context(cert_file, key_file, self.s.client_ca_file)
        self.certificate = x509.load_pem_x509_certificates(Path(cert_file).read_bytes())[0]
        self.ready.set()

    # -- CSR flow --------------------------------------------------------------------
    def _store(self) -> Path:
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            return self._dir
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ak-kubelet-")
        return Path(self._tmp.name)

    def _reuse_stored(self) -> bool:
        if self._dir is None:
            return False
        current = self._dir / CURRENT_FILE
        try:
            pem = current.read_bytes()
            cert = x509.load_pem_x509_certificates(pem)[0]
        except (OSError, ValueError):
            return False
        now = dt.datetime.now(dt.UTC)
        if cert.not_valid_after_utc <= now + dt.timedelta(minutes=1):
            return False
        try:
            self._load(str(current), str(current))
        except (ssl.SSLError, OSError) as e:
            log.warning("kubelet API: cannot use %s: %s", current, e)
            return False
        log.info(
            "kubelet API: serving certificate from %s (valid until %s)",
            current,
            cert.not_valid_after_utc.isoformat(),
        )
        return True

    async def _bootstrap(self) -> None:
        self._reuse_stored()
        while True:
            if self.certificate is not None:
                when = renewal_time(self.certificate)
                delay = (when - dt.datetime.now(dt.UTC)).total_seconds()
                if delay > 0:
                    log.info("kubelet API: serving certificate renewal at %s", when.isoformat())
                    await trio.sleep(delay)
            try:
                await self._obtain()
            except KubeError as e:
                log.warning("kubelet API: serving certificate request failed: %s; retrying", e)
                if self.certificate is None:
                    await self.health.set(certificate_failed(str(e)))
                await trio.sleep(10)

    async def _obtain(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        request = csr_pem(key, self.s.node_name, self.s.addresses)
        spec: dict[str, object] = {
            "request": base64.b64encode(request).decode(),
            "signerName": SIGNER,
            "usages": ["digital signature", "server auth"],
        }
        if self.s.expiration_seconds:
            spec["expirationSeconds"] = self.s.expiration_seconds
        created = await self.local.create(
            CSR_PATH,
            {
                "apiVersion": "certificates.k8s.io/v1",
                "kind": "CertificateSigningRequest",
                "metadata": {"generateName": f"csr-{self.s.node_name}-"},
                "spec": spec,
            },
        )
        name = created["metadata"]["name"]
        log.info("kubelet API: requested a serving certificate: CSR %s (signer %s)", name, SIGNER)
        if self.certificate is None:
            await self.health.set(certificate_pending(name, SIGNER))
        pem = await self._wait_issued(name)
        certs = x509.load_pem_x509_certificates(pem)
        store = self._store()
        current = store / CURRENT_FILE
        _write_private(current, pem + _key_pem(key))
        self._load(str(current), str(current))
        self.certificate = certs[0]
        log.info(
            "kubelet API: serving certificate issued by CSR %s, valid until %s",
            name,
            certs[0].not_valid_after_utc.isoformat(),
        )

    async def _wait_issued(self, name: str) -> bytes:
        told = -1e9
        while True:
            try:
                csr = await self.local.get(f"{CSR_PATH}/{name}")
            except NotFound:
                raise KubeError(f"CSR {name} was deleted before it was issued") from None
            status = csr.get("status") or {}
            types = {c.get("type"): c for c in status.get("conditions") or []}
            for bad in ("Denied", "Failed"):
                if bad in types:
                    message = types[bad].get("message") or types[bad].get("reason") or ""
                    raise KubeError(f"CSR {name} {bad.lower()}: {message}")
            if status.get("certificate"):
                return base64.b64decode(status["certificate"])
            now = trio.current_time()
            if now - told >= 60:
                told = now
                if "Approved" in types:
                    log.info("kubelet API: CSR %s approved; waiting for the signer", name)
                else:
                    log.warning(
                        "kubelet API: waiting for CSR %s to be approved (signer %s; CSRs for "
                        "kubelet serving certificates are never approved automatically): run "
                        "`kubectl certificate approve %s`. logs, exec, attach and port-forward "
                        "are unavailable until then.",
                        name,
                        SIGNER,
                        name,
                    )
            await trio.sleep(2)
