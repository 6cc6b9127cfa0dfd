"""Shared type aliases for the pure core.

Kubernetes objects travel through AK as the JSON the API server sends and
receives, so the core works on plain dicts instead of generated models: no
deserialisation cost, and fields unknown to a client library survive.
"""

from typing import Any

Obj = dict[str, Any]
"""A JSON object as decoded from (or encoded for) the Kubernetes API."""

PodKey = tuple[str, str]
"""A pod's local (namespace, name)."""
