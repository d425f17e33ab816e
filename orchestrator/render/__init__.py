"""One plan value, four renderings: text, Markdown, JSON and DOT."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.plan import Plan


def renderer(fmt: str) -> Callable[[Plan], str]:
    if fmt == "text":
        from orchestrator.render.text import render_text
        return render_text
    if fmt == "markdown":
        from orchestrator.render.markdown import render_markdown
        return render_markdown
    if fmt == "json":
        return Plan.to_json
    if fmt == "dot":
        from orchestrator.render.dot import render_dot
        return render_dot
    raise ValueError(f"unknown format {fmt!r}")


FORMATS = ("text", "markdown", "json", "dot")
