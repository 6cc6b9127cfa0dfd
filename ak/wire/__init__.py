"""Wire protocols, apart from the Kubernetes logic that uses them.

``http1``: AK's one HTTP/1.1 client engine (framing by llhttp through
httptools, ``http1_parse``), under every request AK makes to an API server;
``httpx_transport``: httpx's client API over that engine;
``http1_server``: HTTP/1.1 on one accepted connection (h11), with the hand-over
after a ``101``; ``spdy``: the sans-io SPDY/3.1 codec with its flow-control
windows, ``spdy_session`` driving it over a trio stream; ``websocket``:
wsproto over a trio stream, client and server.
"""
