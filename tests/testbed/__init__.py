"""Throwaway Kubernetes clusters on loopback for tests, benchmarks and the demo (not shipped)."""
