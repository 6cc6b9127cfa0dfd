"""Secrets and ConfigMaps replicated for the pods that use them."""
