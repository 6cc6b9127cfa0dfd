"""Errors a user can cause, kept apart from API errors (ak.kube.errors)."""


class ConfigError(Exception):
    """A bad flag, config file or kubeconfig: reported as one line, exit code 2."""
