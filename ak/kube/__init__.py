"""A thin Kubernetes client: httpx under trio, JSON dicts, list+watch caches."""
