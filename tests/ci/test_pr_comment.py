"""The CI examples: the GitHub and GitLab workflow files are valid (against the schemas that
check-jsonschema vendors, offline), and ci/orch-pr-comment.py posts a plan comment, then
updates the same comment, splitting and pruning parts, against a local HTTP server on
127.0.0.1 that plays the GitHub (or GitLab) REST API: a stand-in, since no forge is
reachable from CI. The comment is made by the real `orch plan --format markdown`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.engine.helpers import REPO, fake, run_orch, write_profile

SCRIPT = REPO / "ci" / "orch-pr-comment.py"
TOKEN = "test-token-not-a-secret"


class ForgeStandIn:
    """Comments of one pull request, served as GitHub (``/repos/o/r/issues/…``) or GitLab
    (``/projects/7/merge_requests/…/notes``) would."""

    def __init__(self) -> None:
        self.comments: dict[int, str] = {}
        self.next_id = 100
        self.calls: list[str] = []
        # someone else's comment is left alone
        self.comments[self._id()] = "LGTM"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def mine(self) -> list[str]:
        return [b for _, b in sorted(self.comments.items()) if b.startswith("<!-- orch-plan")]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _send(self, code: int, body: object = None) -> None:
                raw = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorised(self) -> bool:
                return (self.headers.get("Authorization") == f"Bearer {TOKEN}"
                        or self.headers.get("PRIVATE-TOKEN") == TOKEN)

            def _route(self, method: str) -> None:
                forge.calls.append(f"{method} {self.path}")
                if not self._authorised():
                    return self._send(401, {"message": "Bad credentials"})
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                path = self.path.split("?")[0]
                page = int(re.search(r"[?&]page=(\d+)", self.path).group(1)) \
                    if "page=" in self.path else 1
                listing = path in ("/repos/o/r/issues/5/comments",
                                   "/projects/7/merge_requests/5/notes")
                one = re.fullmatch(r"/repos/o/r/issues/comments/(\d+)|"
                                   r"/projects/7/merge_requests/5/notes/(\d+)", path)
                if listing and method == "GET":
                    items = [{"id": i, "body": b} for i, b in sorted(forge.comments.items())]
                    return self._send(200, items[(page - 1) * 100:page * 100])
                if listing and method == "POST":
                    if len(body["body"]) > 65_536:
                        return self._send(422, {"message": "body is too long"})
                    cid = forge._id()
                    forge.comments[cid] = body["body"]
                    return self._send(201, {"id": cid, "body": body["body"]})
                if one:
                    cid = int(one.group(1) or one.group(2))
                    if cid not in forge.comments:
                        return self._send(404, {"message": "Not Found"})
                    if method in ("PATCH", "PUT"):
                        if len(body["body"]) > 65_536:
                            return self._send(422, {"message": "body is too long"})
                        forge.comments[cid] = body["body"]
                        return self._send(200, {"id": cid, "body": body["body"]})
                    if method == "DELETE":
                        del forge.comments[cid]
                        return self._send(204)
                return self._send(404, {"message": "Not Found"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PATCH(self) -> None:
                self._route("PATCH")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def forge():
    f = ForgeStandIn()
    yield f
    f.close()


def _comment(md: Path, forge: ForgeStandIn, tmp_path: Path, provider: str = "github",
             token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 5}}))
    env = {"PATH": "/usr/bin:/bin"}
    if provider == "github":
        env.update(GITHUB_TOKEN=token, GITHUB_REPOSITORY="o/r", GITHUB_API_URL=forge.url,
                   GITHUB_EVENT_PATH=str(event))
    else:
        env.update(GITLAB_CI="true", GITLAB_TOKEN=token, CI_API_V4_URL=forge.url,
                   CI_PROJECT_ID="7", CI_MERGE_REQUEST_IID="5")
    return subprocess.run([sys.executable, str(SCRIPT), str(md)], env=env,
                          capture_output=True, text=True, timeout=60)


def _plan_md(tmp_path: Path, value: str, count: int = 2, extra: dict | None = None) -> Path:
    profile = write_profile(tmp_path, [fake("a", on="node", value=value)],
                            roles={"node": {"count": count}})
    res = run_orch("plan", str(profile), "--state", str(tmp_path / "s.db"),
                   "--format", "markdown", env=extra)
    assert res.returncode == 0, res.stderr
    md = tmp_path / "plan.md"
    md.write_text(res.stdout)
    return md


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_the_script_creates_one_comment_then_updates_it(tmp_path, forge, provider):
    res = _comment(_plan_md(tmp_path, "first"), forge, tmp_path, provider)
    assert res.returncode == 0, res.stderr
    assert "created part 1/1" in res.stdout
    [body] = forge.mine()
    assert "value: \"first\"" in body and body.startswith("<!-- orch-plan:t:- -->")
    first_id = max(forge.comments)
    res = _comment(_plan_md(tmp_path, "second"), forge, tmp_path, provider)
    assert res.returncode == 0 and "updated part 1/1" in res.stdout
    [body] = forge.mine()
    assert "value: \"second\"" in body and forge.comments[first_id] == body
    assert forge.comments[101] == "LGTM" and len(forge.comments) == 2
    method = "PATCH" if provider == "github" else "PUT"
    assert any(c.startswith(method) for c in forge.calls)


def test_a_plan_too_long_for_one_comment_is_split_then_pruned(tmp_path, forge):
    md = _plan_md(tmp_path, "x" * 300, count=400, extra={"ORCH_MARKDOWN_LIMIT": "0"})
    full = md.read_text()
    assert len(full) > 65_536
    res = _comment(md, forge, tmp_path)
    assert res.returncode == 0, res.stderr
    parts = forge.mine()
    assert len(parts) >= 2 and all(len(p) <= 65_536 for p in parts)
    assert parts[0].startswith(f"<!-- orch-plan:t:- part 1/{len(parts)} -->")
    assert "Continued from the previous comment (part 2" in parts[1]
    for p in parts:  # each part's fences and folds are balanced
        assert p.count("```") % 2 == 0 and p.count("<details>") == p.count("</details>")
    for i in range(1, 401):
        assert any(f"+ node-{i}/a " in p for p in parts), i
    # a shorter plan afterwards: part 1 edited in place, the other parts deleted
    ids = sorted(i for i, b in forge.comments.items() if b.startswith("<!-- orch-plan"))
    res = _comment(_plan_md(tmp_path, "short"), forge, tmp_path)
    assert res.returncode == 0 and "deleted old part 2" in res.stdout
    assert [i for i, b in forge.comments.items() if b.startswith("<!-- orch")] == ids[:1]


def test_errors_are_one_line_and_exit_1(tmp_path, forge):
    md = _plan_md(tmp_path, "v")
    res = _comment(md, forge, tmp_path, token="wrong")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "HTTP 401" in res.stderr and TOKEN not in res.stderr
    plain = tmp_path / "plain.md"
    plain.write_text("no marker here\n")
    res = _comment(plain, forge, tmp_path)
    assert res.returncode == 1 and "no orch-plan marker" in res.stderr


@pytest.mark.parametrize(("schema", "path"), [
    ("vendor.github-workflows", ".github/workflows/orch-plan.yml"),
    ("vendor.gitlab-ci", "ci/gitlab-orch-plan.yml"),
])
def test_the_workflow_files_are_valid(schema, path, tmp_path):
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.fail("check-jsonschema is missing: pip install -e '.[dev]'")
    res = subprocess.run([exe, "--builtin-schema", schema, str(REPO / path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    # and the check can fail: a runner given as a mapping, a script given as a number
    broken = tmp_path / "broken.yml"
    text = (REPO / path).read_text()
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs-on: [1, {a: b}]")
                      .replace("  extends: .orch-plan", "  extends: .orch-plan\n  script: 5"))
    res = subprocess.run([exe, "--builtin-schema", schema, str(broken)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0


def test_the_workflows_run_the_script_and_plan_the_way_the_tests_do():
    gh = (REPO / ".github/workflows/orch-plan.yml").read_text()
    gl = (REPO / "ci/gitlab-orch-plan.yml").read_text()
    for text in (gh, gl):
        assert "--format markdown --out plan.json > plan.md" in text
        assert "ci/orch-pr-comment.py" in text
    assert "pull-requests: write" in gh
    assert 'CI_PIPELINE_SOURCE == "merge_request_event"' in gl
