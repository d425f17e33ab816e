"""The plan's graph in Graphviz DOT: one cluster per layer, nodes coloured by action, a legend.

Layers are drawn top to bottom (``subgraph cluster_<n>``, labelled with the layer's name and
counts), so a profile of 80 steps in 6 layers reads as 6 boxes rather than one flat chain;
inside a layer, steps flow left to right. External steps are octagons.
"""

from __future__ import annotations

from collections import Counter

from orchestrator.plan import Action, Plan
from orchestrator.render.common import layer_names

COLOR = {Action.CREATE: "palegreen", Action.UPDATE: "khaki", Action.REPLACE: "orange",
         Action.DELETE: "salmon", Action.NOOP: "white"}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(plan: Plan) -> str:
    by_layer: dict[str, list[str]] = {n: [] for n in layer_names(plan)}
    counts: dict[str, Counter[str]] = {n: Counter() for n in by_layer}
    out = [f"digraph {_q(plan.profile)} {{", "  rankdir=TB;", "  compound=true;",
           "  newrank=true;", '  graph [fontname="Helvetica", fontsize=12];',
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
           '  edge [color="#555555", arrowsize=0.6];']
    for p in plan:
        by_layer[p.step.layer].append(p.step.id)
        counts[p.step.layer][p.action.value] += 1
    by_id = plan.by_id_cached
    for i, (layer, ids) in enumerate(by_layer.items()):
        if not ids:
            continue
        detail = ", ".join(f"{n} {a}" for a, n in counts[layer].items())
        out += [f"  subgraph cluster_{i} {{",
                f"    label={_q(f'{layer} ({detail})')};", '    labeljust="l";',
                '    style="rounded"; color="#7777aa";']
        for sid in ids:
            p = by_id[sid]
            shape = ", shape=octagon" if p.step.external else ""
            label = _q(sid + "\n" + p.action.value)
            out.append(f"    {_q(sid)} [label={label}, "
                       f"fillcolor={COLOR[p.action]}, tooltip={_q(p.reason)}{shape}];")
        out.append("  }")
    for a, b in plan.graph().edges():
        out.append(f"  {_q(a)} -> {_q(b)};")
    out += ["  subgraph cluster_legend {", '    label="legend"; style="dashed";',
            '    node [shape=box, fontsize=9, width=0.9];']
    prev = ""
    for action in Action:
        name = f"legend_{action.name.lower()}"
        out.append(f"    {name} [label={_q(action.value)}, fillcolor={COLOR[action]}];")
        if prev:
            out.append(f"    {prev} -> {name} [style=invis];")
        prev = name
    ext = _q("external\n(by hand)")
    out.append(f"    legend_external [label={ext}, shape=octagon, "
               "fillcolor=white];")
    out.append(f"    {prev} -> legend_external [style=invis];")
    out += ["  }", "}"]
    return "\n".join(out) + "\n"
