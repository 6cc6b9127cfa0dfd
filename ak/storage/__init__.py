"""Remote storage for local claims (issue #29): see ``ak/storage/controller.py``."""
