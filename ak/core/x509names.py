"""X.509 subject names as Kubernetes uses them, over RFC 5280's length bounds.

RFC 5280 bounds a common name at 64 characters (ub-common-name), and
``cryptography`` refuses to build a longer one. Kubernetes ignores the bound
(Go's crypto/x509 never checks it): a node's identity is
``CN=system:node:<node name>`` for node names up to 253 characters, so any
node name over 52 characters needs a longer CN, in its client certificate as
in its kubelet serving CSR. ``cryptography`` builds one only with its private
``_validate=False``, and then (and whenever it reads one back) warns; the
warning is silenced here alone, where the long value is intended.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography import x509
from cryptography.x509.oid import NameOID

UB_COMMON_NAME = 64
_LENGTH_WARNING = "Attribute's length must be"


@contextmanager
def _long_values_allowed() -> Iterator[None]:
    # catch_warnings swaps the process-wide filter list: only synchronous code
    # runs inside, so no other trio task sees the change.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_LENGTH_WARNING, category=UserWarning)
        yield


def subject(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    """``CN=<common_name>, O=<each organization>``, whatever the CN's length."""
    with _long_values_allowed():
        cn = x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False)
    return x509.Name(
        [cn, *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations)]
    )


def identity(
    signed: x509.Certificate | x509.CertificateSigningRequest,
) -> tuple[str, tuple[str, ...]]:
    """The subject's first CN ("" if none) and every O: Kubernetes' user and groups."""
    with _long_values_allowed():  # reading the subject builds its attributes again
        name = signed.subject
        cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        orgs = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return (str(cns[0].value) if cns else "", tuple(str(o.value) for o in orgs))
