"""One remote watch per collection, read by several parts of AK through labelled views.

Each watch AK opens on the remote API server costs it a watcher (memory, and a
filter check on every event of that resource, every tenant's), so at many AKs
per remote the watch count per AK is a capacity limit. Identity Secrets and
Secret copies, root CA replicas and ConfigMap copies, the pod path's and the
quota's namespaces were separate watches of the same collection under AK's
node label; they now share one, and each reader sees only the objects its own
labels select, exactly as its own label selector did.

``Informers.shared`` (``ak/kube/registry.py``) returns the one ``SharedInformer``
per client, collection and selector; ``view`` gives a reader its filtered
cache. Any view's ``run`` keeps the watch going: the first to run hosts it, the
others wait and take over if the host's task is cancelled (a supervisor
restart), so the watch lives as long as any reader runs. A view that says when
it is ``wanted`` (and pokes when that may have become true) lets the watch
close while no view wants it and nothing is cached (``ak/kube/ondemand.py``):
an AK with no pods holds no watch of Secrets or ConfigMaps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import trio

from ak.core.types import Obj
from ak.kube.client import KubeClient
from ak.kube.informer import Handler, Informer
from ak.kube.ondemand import OnDemand


def _labels(obj: Obj | None) -> Mapping[str, str]:
    if obj is None:
        return {}
    labels: Mapping[str, str] = obj.get("metadata", {}).get("labels") or {}
    return labels


class View:
    """The objects of a shared watch that carry ``labels``: an Informer's reading side."""

    def __init__(
        self,
        shared: SharedInformer,
        labels: Mapping[str, str],
        handler: Handler,
        transform: Callable[[Obj], Obj] | None,
        wanted: Callable[[], bool] | None,
    ) -> None:
        self.shared = shared
        self.labels = dict(labels)
        self.handler = handler
        self.transform = transform
        self.wanted = wanted or (lambda: True)
        self.count = 0

    def poke(self) -> None:
        """This view may be wanted now: open the watch if it is closed."""
        self.shared.watch.poke()

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        have = _labels(obj)
        return all(have.get(k) == v for k, v in self.labels.items())

    @property
    def synced(self) -> trio.Event:
        return self.shared.informer.synced

    @property
    def name(self) -> str:
        return self.shared.informer.name

    def get(self, namespace: str, name: str) -> Obj | None:
        obj = self.shared.informer.get(namespace, name)
        return obj if self.matches(obj) else None

    def values(self) -> Iterator[Obj]:
        return (obj for obj in self.shared.informer.values() if self.matches(obj))

    def size(self) -> int:
        return self.count

    async def run(self) -> None:
        await self.shared.run()


class SharedInformer:
    def __init__(self, client: KubeClient, collection: str, label_selector: str, name: str):
        self.views: list[View] = []
        self.informer = Informer(
            client,
            collection,
            label_selector=label_selector,
            handler=self._dispatch,
            name=name,
            transform=self._transform,
        )
        self.watch = OnDemand(
            self.informer,
            lambda: self.informer.size() > 0 or any(v.wanted() for v in self.views),
        )
        self._hosted = False
        self._host_gone = trio.Event()

    def view(
        self,
        labels: Mapping[str, str],
        handler: Handler,
        transform: Callable[[Obj], Obj] | None = None,
        wanted: Callable[[], bool] | None = None,
    ) -> View:
        """A reader's view. Add views before the watch lists: a late one would
        miss the handler calls for objects already cached. ``wanted``: whether the
        reader needs the watch open (always, if not given); it calls ``poke``
        when that may have become true."""
        v = View(self, labels, handler, transform, wanted)
        self.views.append(v)
        return v

    def _transform(self, obj: Obj) -> Obj:
        for v in self.views:
            if v.transform is not None and v.matches(obj):
                obj = v.transform(obj)
        return obj

    def _dispatch(self, old: Obj | None, new: Obj | None) -> None:
        for v in self.views:
            was, now = v.matches(old), v.matches(new)
            if was or now:
                v.count += int(now) - int(was)
                v.handler(old if was else None, new if now else None)

    async def run(self) -> None:
        """Keep the watch going while any reader runs (see the module docstring)."""
        while True:
            if not self._hosted:
                self._hosted = True
                try:
                    await self.watch.run()
                finally:
                    self._hosted = False
                    self._host_gone.set()
                    self._host_gone = trio.Event()
            else:
                await self._host_gone.wait()
