"""The tenant's NetworkPolicies: copied to the remote cluster, enforced at pod addresses."""
