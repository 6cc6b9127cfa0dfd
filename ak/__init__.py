"""Actual Kubelets: a Virtual Kubelet provider that runs pods on a remote cluster."""

__version__ = "0.1.0"
