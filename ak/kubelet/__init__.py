"""The kubelet API on AK's node port: what kube-apiserver calls for logs, exec,
attach, port-forward and stats, served from the remote cluster.

The Kubernetes-specific codecs are sans-io (``channels``, ``routes``,
``authz``); the wire protocols under them (SPDY/3.1, WebSocket, HTTP/1.1 on
both ends) live in ``ak.wire``; ``api`` is the server, ``remotecommand`` and
``portforward`` join the local client to the remote API server, ``certs`` and
``auth`` cover TLS and access.
"""
