"""Errors raised by the pure core.

They carry a machine-readable ``reason`` (CamelCase, shown by kubectl in the
pod's STATUS column) next to a human-readable message, so the shell can put
both on the local pod without reformatting.
"""

from dataclasses import dataclass


class TranslationError(Exception):
    """A local pod cannot be run on the remote cluster as it is."""

    def __init__(self, reason: str, message: str, *, settling: bool = False) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        # A state that normally passes by itself within seconds (a namespace
        # still terminating, an authorizer that has not yet seen the pod's
        # binding): retried quietly for a while before anyone is told.
        self.settling = settling


@dataclass(frozen=True)
class Notice:
    """Something a user should hear about a pod that still goes ahead (an
    optional Secret missing, an ephemeral container refused): a Warning Event."""

    reason: str
    message: str
