"""A generic directed acyclic graph: nodes, edges, a deterministic topological order,
cycle detection that names the cycle, reachability and DOT output.

It knows nothing about steps, drivers or profiles; the planner builds one of these from
steps and the executor walks it. An edge ``a -> b`` means *b depends on a* (a runs first).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from orchestrator.errors import CycleError

K = TypeVar("K", bound=str)


class Graph(Generic[K]):
    """A DAG of string keys. Insertion order is kept; orders are deterministic."""

    __slots__ = ("_pred", "_succ")

    def __init__(self) -> None:
        self._succ: dict[K, list[K]] = {}
        self._pred: dict[K, list[K]] = {}

    def add_node(self, key: K) -> None:
        if key not in self._succ:
            self._succ[key] = []
            self._pred[key] = []

    def add_edge(self, before: K, after: K) -> None:
        """``after`` depends on ``before``. Both must already be nodes."""
        if before not in self._succ or after not in self._succ:
            missing = before if before not in self._succ else after
            raise KeyError(missing)
        self._succ[before].append(after)
        self._pred[after].append(before)

    def __contains__(self, key: object) -> bool:
        return key in self._succ

    def __len__(self) -> int:
        return len(self._succ)

    def __iter__(self) -> Iterator[K]:
        return iter(self._succ)

    def predecessors(self, key: K) -> list[K]:
        return self._pred[key]

    def successors(self, key: K) -> list[K]:
        return self._succ[key]

    def edges(self) -> Iterator[tuple[K, K]]:
        for a, succ in self._succ.items():
            for b in succ:
                yield a, b

    def topological_order(self, priority: Callable[[K], object] | None = None) -> list[K]:
        """Kahn's algorithm; ties broken by ``priority`` (default: insertion order).

        Raises :class:`CycleError` naming one cycle when the graph has any.
        """
        rank = {k: i for i, k in enumerate(self._succ)}
        key_of = (lambda k: (priority(k), rank[k])) if priority else rank.__getitem__
        indeg = {k: len(p) for k, p in self._pred.items()}
        ready = [(key_of(k), k) for k, d in indeg.items() if d == 0]
        heapq.heapify(ready)
        order: list[K] = []
        while ready:
            _, k = heapq.heappop(ready)
            order.append(k)
            for s in self._succ[k]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    heapq.heappush(ready, (key_of(s), s))
        if len(order) != len(self._succ):
            raise CycleError(self.find_cycle([k for k, d in indeg.items() if d > 0]))
        return order

    def find_cycle(self, candidates: Iterable[K] | None = None) -> list[K]:
        """One cycle among ``candidates`` (default: all nodes), as a list of keys; [] if none."""
        WHITE, GREY, BLACK = 0, 1, 2
        color = dict.fromkeys(self._succ, WHITE)
        for start in candidates if candidates is not None else self._succ:
            if color[start] != WHITE:
                continue
            stack: list[tuple[K, Iterator[K]]] = [(start, iter(self._succ[start]))]
            path = [start]
            color[start] = GREY
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    color[node] = BLACK
                    stack.pop()
                    path.pop()
                elif color[nxt] == GREY:
                    return path[path.index(nxt):]
                elif color[nxt] == WHITE:
                    color[nxt] = GREY
                    stack.append((nxt, iter(self._succ[nxt])))
                    path.append(nxt)
        return []

    def descendants(self, roots: Iterable[K]) -> set[K]:
        return self._reach(roots, self._succ)

    def ancestors(self, roots: Iterable[K]) -> set[K]:
        return self._reach(roots, self._pred)

    @staticmethod
    def _reach(roots: Iterable[K], adj: dict[K, list[K]]) -> set[K]:
        seen: set[K] = set()
        todo = list(roots)
        while todo:
            k = todo.pop()
            for n in adj[k]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return seen

    def subgraph(self, keep: Iterable[K]) -> Graph[K]:
        keep_set = set(keep)
        g: Graph[K] = Graph()
        for k in self._succ:
            if k in keep_set:
                g.add_node(k)
        for a, b in self.edges():
            if a in keep_set and b in keep_set:
                g.add_edge(a, b)
        return g

    def reversed(self) -> Graph[K]:
        g: Graph[K] = Graph()
        for k in self._succ:
            g.add_node(k)
        for a, b in self.edges():
            g.add_edge(b, a)
        return g

    def longest_path(self, weight: Callable[[K], float]) -> float:
        """Length of the critical path, where each node costs ``weight(node)``."""
        finish: dict[K, float] = {}
        for k in self.topological_order():
            start = max((finish[p] for p in self._pred[k]), default=0.0)
            finish[k] = start + weight(k)
        return max(finish.values(), default=0.0)

    def to_dot(self, label: Callable[[K], str] | None = None,
               attrs: Callable[[K], dict[str, str]] | None = None, name: str = "plan") -> str:
        def q(text: str) -> str:
            return '"' + text.replace('"', '\\"') + '"'

        lines = [f"digraph {q(name)} {{", "  rankdir=LR;", "  node [shape=box];"]
        for k in self._succ:
            extra = dict(attrs(k)) if attrs else {}
            extra["label"] = label(k) if label else k
            body = ", ".join(f"{a}={q(v)}" for a, v in sorted(extra.items()))
            lines.append(f"  {q(k)} [{body}];")
        for a, b in self.edges():
            lines.append(f"  {q(a)} -> {q(b)};")
        lines.append("}")
        return "\n".join(lines) + "\n"
