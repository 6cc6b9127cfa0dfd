"""Create or replace an object AK owns remotely, never one it does not."""

from __future__ import annotations

from collections.abc import Callable

from ak.core.errors import TranslationError
from ak.core.types import Obj
from ak.kube.client import KubeClient, path
from ak.kube.errors import Conflict, Forbidden, Invalid, NotFound


async def put_owned(
    client: KubeClient,
    resource: str,
    body: Obj,
    current: Obj | None,
    *,
    owned: Callable[[Obj], bool],
    reason: str,
) -> Obj:
    """Make the object ``body`` describes exist as ``body`` says.

    ``current`` is what a cache believes exists (None: nothing); a stale
    belief costs one GET. An object of the same name that ``owned`` does
    not recognise belongs to someone else: ``TranslationError(reason)``, as
    for a refusal (403/422) by the API server, so the pod shows why.
    Other errors (outages, 5xx) are raised as they are, to be retried.
    """
    meta = body["metadata"]
    kind, ns, name = body["kind"], meta["namespace"], meta["name"]
    collection = path(resource, namespace=ns)
    obj_path = path(resource, namespace=ns, name=name)
    try:
        for _ in range(3):
            if current is None:
                try:
                    return await client.create(collection, body)
                except Conflict as e:
                    if not e.already_exists:
                        raise
                try:
                    current = await client.get(obj_path)
                except NotFound:
                    continue
            if not owned(current):
                raise TranslationError(
                    reason,
                    f"a {kind} named {name!r} already exists in remote namespace {ns} "
                    "and was not made by AK",
                )
            update = {**body, "metadata": {**meta, **_rv(current)}}
            try:
                return await client.replace(obj_path, update)
            except NotFound:
                current = None
            except Conflict:
                current = await client.get(obj_path)
    except (Forbidden, Invalid) as e:
        raise TranslationError(
            reason, f"the remote cluster refused {kind} {ns}/{name}: {e.message}"
        ) from e
    raise Conflict(409, "Conflict", f"{kind} {ns}/{name} keeps changing; retrying")


def _rv(obj: Obj) -> dict[str, str]:
    return {"resourceVersion": obj["metadata"]["resourceVersion"]}
