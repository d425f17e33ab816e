"""The plan's graph in Graphviz DOT, coloured by action."""

from __future__ import annotations

from orchestrator.plan import Action, Plan

COLOR = {Action.CREATE: "palegreen", Action.UPDATE: "khaki", Action.REPLACE: "orange",
         Action.DELETE: "salmon", Action.NOOP: "white"}


def render_dot(plan: Plan) -> str:
    by_id = plan.by_id_cached

    def attrs(sid: str) -> dict[str, str]:
        p = by_id[sid]
        a = {"style": "filled", "fillcolor": COLOR[p.action], "tooltip": p.reason}
        if p.step.external:
            a["shape"] = "octagon"
        return a

    return plan.graph().to_dot(label=lambda sid: f"{sid}\\n{by_id[sid].action.value}",
                               attrs=attrs, name=plan.profile)
