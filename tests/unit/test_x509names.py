"""Node identities whose CN is over RFC 5280's 64 characters: CSRs, certificates, readers."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ak.core.x509names import UB_COMMON_NAME, identity, subject
from ak.kubelet.auth import user_from_certificate
from ak.kubelet.certs import csr_pem
from tests.testbed.pki import CertificateAuthority

# The longest DNS label, so the longest node name without dots: CN of 75 characters.
LONG_NODE = "vk-" + "a" * 60
# A DNS subdomain of 199 characters.
LONGEST_NODE = "vk." + ".".join(["a" * 63] * 3) + ".b"


def test_the_names_are_over_the_bound() -> None:
    assert len(LONG_NODE) == 63
    for node in (LONG_NODE, LONGEST_NODE):
        assert len(f"system:node:{node}") > UB_COMMON_NAME


@pytest.mark.parametrize("node", ["vk-ak-example", LONG_NODE, LONGEST_NODE])
def test_serving_csr_carries_the_full_node_identity(node: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.load_pem_x509_csr(csr_pem(key, node, ("10.0.0.7", node)))
    assert identity(csr) == (f"system:node:{node}", ("system:nodes",))
    assert csr.is_signature_valid


@pytest.mark.parametrize("node", [LONG_NODE, LONGEST_NODE])
def test_testbed_ca_issues_long_node_identities(tmp_path: Path, node: str) -> None:
    ca = CertificateAuthority(tmp_path)
    pair = ca.issue("node", f"system:node:{node}", orgs=("system:nodes",), client=True)
    cert = x509.load_pem_x509_certificates(pair.cert.read_bytes())[0]
    assert identity(cert) == (f"system:node:{node}", ("system:nodes",))
    user = user_from_certificate(cert.public_bytes(Encoding.DER))
    assert (user.name, user.groups) == (
        f"system:node:{node}",
        ("system:nodes", "system:authenticated"),
    )


def test_short_names_are_built_as_cryptography_builds_them() -> None:
    assert subject("system:node:vk", ("system:nodes",)) == x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "system:node:vk"),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "system:nodes"),
        ]
    )


def test_no_common_name_reads_as_an_empty_user() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    assert identity(builder.sign(key, hashes.SHA256())) == ("", ())
