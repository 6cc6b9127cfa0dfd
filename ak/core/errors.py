"""Errors raised by the pure core.

They carry a machine-readable ``reason`` (CamelCase, shown by kubectl in the
pod's STATUS column) next to a human-readable message, so the shell can put
both on the local pod without reformatting.
"""


class TranslationError(Exception):
    """A local pod cannot be run on the remote cluster as it is."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class RemoteIdentityError(ValueError):
    """A remote pod belongs to a different incarnation of the local pod.

    Pods with the same namespace/name can be deleted and re-created locally.
    Patching the old remote pod would silently run the old spec for the new
    pod, so the caller must delete the remote pod and create it afresh.
    """
