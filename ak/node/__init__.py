"""The virtual Node: registration, Lease and status."""
