"""Local Services reflected into the remote namespaces of the pods they select."""
