"""A thin Kubernetes client on AK's HTTP engine (ak.wire): JSON dicts, list+watch caches."""
