import pytest

from orchestrator.errors import CycleError
from orchestrator.graph import Graph


def build(edges, nodes=()):
    g = Graph()
    for n in nodes:
        g.add_node(n)
    for a, b in edges:
        g.add_node(a)
        g.add_node(b)
        g.add_edge(a, b)
    return g


def test_topological_order_puts_dependencies_first_and_keeps_insertion_order_for_ties():
    g = build([("a", "c"), ("b", "c"), ("c", "d")], nodes=["b", "a"])
    order = g.topological_order()
    assert order == ["b", "a", "c", "d"]
    for a, b in g.edges():
        assert order.index(a) < order.index(b)


def test_cycle_is_detected_and_named():
    g = build([("a", "b"), ("b", "c"), ("c", "a"), ("x", "a")])
    with pytest.raises(CycleError) as err:
        g.topological_order()
    assert sorted(err.value.cycle) == ["a", "b", "c"]
    assert "a -> b -> c -> a" in str(err.value) or "b -> c -> a -> b" in str(err.value) \
        or "c -> a -> b -> c" in str(err.value)


def test_find_cycle_is_empty_for_a_dag():
    assert build([("a", "b"), ("a", "c"), ("b", "c")]).find_cycle() == []


def test_ancestors_descendants_and_subgraph():
    g = build([("a", "b"), ("b", "c"), ("x", "c"), ("c", "d")])
    assert g.ancestors(["c"]) == {"a", "b", "x"}
    assert g.descendants(["b"]) == {"c", "d"}
    sub = g.subgraph(["a", "b", "d"])
    assert list(sub.edges()) == [("a", "b")]


def test_longest_path_is_the_critical_path():
    g = build([("a", "b"), ("b", "d"), ("a", "c"), ("c", "d")])
    w = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}
    assert g.longest_path(w.__getitem__) == 7.0


def test_dot_output_quotes_ids_and_lists_edges():
    dot = build([("pve-1/ceph.osd[sdb]", "b\"q")]).to_dot()
    assert '"pve-1/ceph.osd[sdb]" -> "b\\"q";' in dot
    assert dot.startswith('digraph "plan" {')
