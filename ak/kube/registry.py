"""The watches AK shares and the changes its parts follow: one registry, made in ``ak/run.py``.

Two kinds of entry:

- **Shared watches** (``shared``): one remote watch per cluster, collection and
  label selector, which several parts read through labelled views
  (``ak/kube/shared.py``). Each watch costs the remote API server a watcher, so
  a second reader of the same collection must not open a second one.
- **Topics**: the changes one part has seen, for the parts that follow them
  (the node's local pods, their remote twins, AK's remote namespaces, local
  Services). The part that watches publishes; ``ak/run.py`` says who follows,
  so the whole graph is read in one place rather than in every constructor.

Followers are called synchronously, in the order they followed, before the
publisher handles the change itself; like every informer handler they must be
cheap (enqueue a key), never await.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVarTuple

from ak.core.types import Obj, PodKey
from ak.kube.client import KubeClient
from ak.kube.shared import SharedInformer

Ts = TypeVarTuple("Ts")


class Topic(Generic[*Ts]):
    """One stream of changes, and who follows it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._followers: list[tuple[str, Callable[[*Ts], None]]] = []

    def follow(self, who: str, handler: Callable[[*Ts], None]) -> None:
        """``who``: the follower's name, for ``Informers.describe``."""
        self._followers.append((who, handler))

    def publish(self, *change: *Ts) -> None:
        for _, handler in self._followers:
            handler(*change)

    @property
    def followers(self) -> list[str]:
        return [who for who, _ in self._followers]


class Informers:
    """Every shared watch and topic of one AK; handed to the parts that use them."""

    def __init__(self) -> None:
        self._shared: dict[tuple[KubeClient, str, str], SharedInformer] = {}
        # (old, new) of each local pod bound to the node: published by the pod controller.
        self.local_pods: Topic[Obj | None, Obj | None] = Topic("local pods")
        # (local key, old, new) of each remote twin: published by the pod provider.
        self.remote_pods: Topic[PodKey, Obj | None, Obj | None] = Topic("remote pods")
        # (old, new) of each remote namespace AK made: published by the pod provider.
        self.remote_namespaces: Topic[Obj | None, Obj | None] = Topic("remote namespaces")
        # (old, new) of each local Service: published by the Service controller.
        self.local_services: Topic[Obj | None, Obj | None] = Topic("local services")

    def shared(
        self, client: KubeClient, collection: str, label_selector: str, name: str
    ) -> SharedInformer:
        """The one shared watch of ``collection`` under ``label_selector`` on ``client``."""
        key = (client, collection, label_selector)
        if key not in self._shared:
            self._shared[key] = SharedInformer(client, collection, label_selector, name)
        return self._shared[key]

    def describe(self) -> list[str]:
        """One line per shared watch and topic: what it is and who reads it."""
        lines = [f"watch {s.informer.name} ({len(s.views)} views)" for s in self._shared.values()]
        for topic in (
            self.local_pods,
            self.remote_pods,
            self.remote_namespaces,
            self.local_services,
        ):
            lines.append(f"topic {topic.name} -> {', '.join(topic.followers) or 'nobody'}")
        return lines
