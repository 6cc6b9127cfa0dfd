"""Pods bound to the virtual node, mirrored to the remote cluster."""
