"""Which remote pod an identity Secret belongs to, and whether that pod is going."""

from ak.core.labels import ANNOTATION_POD_NAME, LABEL_NAMESPACE
from ak.core.names import remote_namespace
from ak.tokens.identity import gone_or_going, identity_key

TWIN = {"metadata": {"name": "web-0", "uid": "remote-1"}}


def test_a_secret_deleted_with_its_pod_is_not_written_again() -> None:
    assert gone_or_going(None)
    assert gone_or_going({"metadata": {**TWIN["metadata"], "deletionTimestamp": "now"}})
    assert gone_or_going(TWIN, "remote-0")  # the Secret's owner was an earlier pod
    assert not gone_or_going(TWIN, "remote-1")
    assert not gone_or_going(TWIN)


def test_identity_key() -> None:
    rns = remote_namespace("vk", "shop")
    secret = {
        "metadata": {
            "name": "ak-identity-web-0",
            "namespace": rns,
            "labels": {LABEL_NAMESPACE: "shop"},
            "annotations": {ANNOTATION_POD_NAME: "web-0"},
        }
    }
    assert identity_key(secret, "vk") == ("shop", "web-0")
    assert identity_key(secret, "other-node") is None  # another tenant's namespace
    renamed = {"metadata": {**secret["metadata"], "name": "ak-identity-web-1"}}
    assert identity_key(renamed, "vk") is None
