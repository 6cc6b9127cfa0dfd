"""Kubernetes name and label syntax checks (apimachinery validation rules).

``re.fullmatch`` is used throughout because ``$`` would accept a trailing
newline, which the API server rejects.
"""

import re

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63


def is_dns_label(value: str) -> bool:
    """RFC 1123 label: namespace names, and each part of a subdomain."""
    return len(value) <= DNS_LABEL_MAX and _DNS_LABEL.fullmatch(value) is not None


def is_dns_subdomain(value: str) -> bool:
    """RFC 1123 subdomain: node, pod, Secret and ConfigMap names."""
    if not value or len(value) > DNS_SUBDOMAIN_MAX:
        return False
    return all(_DNS_LABEL.fullmatch(part) for part in value.split("."))


def is_label_value(value: str) -> bool:
    return len(value) <= LABEL_VALUE_MAX and _LABEL_VALUE.fullmatch(value) is not None


def is_qualified_name(key: str) -> bool:
    """Label or annotation key: optional DNS-subdomain prefix, '/', name."""
    prefix, slash, name = key.rpartition("/")
    if slash and not is_dns_subdomain(prefix):
        return False
    return bool(name) and is_label_value(name)
