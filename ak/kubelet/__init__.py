"""The kubelet API on AK's node port: what kube-apiserver calls for logs, exec,
attach, port-forward and stats, served from the remote cluster.

Protocol codecs are sans-io (``spdy``, ``channels``, ``routes``, ``authz``);
``spdy_session``, ``websocket`` and ``http`` drive them over trio streams;
``api`` is the server, ``remotecommand`` and ``portforward`` join the local
client to the remote API server, ``certs`` and ``auth`` cover TLS and access.
"""
