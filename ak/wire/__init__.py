"""Wire protocols, apart from the Kubernetes logic that uses them.

``http1``: AK's one HTTP/1.1 client engine (framing by llhttp through
httptools, ``http1_parse``), under every request AK makes to an API server;
``httpx_transport``: httpx's client API over that engine.
"""
