"""Collectors: one module per source type, all implementing :class:`Collector`.

Adding a source type is adding one module and one line to ``_REGISTRY``.
Modules are imported only when a source of that type is polled.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

from listener.collectors.base import (
    Author,
    CollectContext,
    Collector,
    CollectResult,
    PollState,
    Post,
    Rejected,
)

__all__ = [
    "COLLECTOR_TYPES",
    "Author",
    "CollectContext",
    "CollectResult",
    "Collector",
    "PollState",
    "Post",
    "Rejected",
    "get_collector",
]


@dataclass(frozen=True)
class CollectorType:
    module: str  #: "package.module:ClassName"
    needs: tuple[str, ...]  #: settings fields of which one is required
    network: bool  #: reaches the network (vs. local files only)


COLLECTOR_TYPES: dict[str, CollectorType] = {
    "feed": CollectorType("listener.collectors.feed:FeedCollector", ("url", "path"), True),
    "jsonl": CollectorType("listener.collectors.jsonl:JsonlCollector", ("path",), False),
    "x_search": CollectorType("listener.collectors.x:XSearchCollector", ("query",), True),
    "x_mentions": CollectorType("listener.collectors.x:XMentionsCollector", ("username",), True),
}


@cache
def get_collector(type_name: str) -> Collector:
    """The (stateless, shared) collector instance for a source type."""
    spec = COLLECTOR_TYPES[type_name]
    module_name, _, class_name = spec.module.partition(":")
    module = importlib.import_module(module_name)
    collector: Collector = getattr(module, class_name)()
    return collector
