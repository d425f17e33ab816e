#!/usr/bin/env python3
"""Post an ``orch plan --format markdown`` comment on a pull request, or update the last one.

    orch plan profiles/x.yaml -i inventories/y.yaml --format markdown > plan.md
    python3 ci/orch-pr-comment.py plan.md

The comment's first line is orch's hidden marker, ``<!-- orch-plan:PROFILE:INVENTORY -->``.
The script lists the pull request's comments, finds the ones carrying that marker and edits
them in place, so a pull request keeps one plan comment per profile and inventory however many
times it is pushed. A comment longer than ``--limit`` (GitHub: 65,536 characters) is split over
several comments, as Atlantis does, closing and reopening code fences and folds at the cut;
leftover parts of a longer previous plan are deleted.

GitHub Actions: ``GITHUB_TOKEN``, ``GITHUB_REPOSITORY``, ``GITHUB_API_URL`` and the pull
request's number from ``GITHUB_EVENT_PATH`` (or ``--pr``). GitLab CI: ``GITLAB_TOKEN`` (a
project access token with ``api`` scope), ``CI_API_V4_URL``, ``CI_PROJECT_ID`` and
``CI_MERGE_REQUEST_IID``. Standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

MARKER = re.compile(r"^<!-- orch-plan:(?P<key>[^ >]*)(?: part (?P<part>\d+)/\d+)? -->")
LIMIT = 65_536
FENCE = re.compile(r"^(```+)(.*)$")


class ApiError(Exception):
    pass


# -- splitting ------------------------------------------------------------------------------
def split(text: str, limit: int = LIMIT) -> list[str]:
    """``text`` cut at line ends into parts of at most ``limit`` characters; a code fence or
    a ``<details>`` fold open at a cut is closed there and reopened in the next part."""
    lines = text.splitlines()
    first = MARKER.match(lines[0]) if lines else None
    key = first.group("key") if first else ""
    if len(text) <= limit:
        return [text]
    room = limit - 400  # the continuation header and the closing lines
    parts: list[list[str]] = [[]]
    size = 0
    fence: str | None = None
    folds = 0
    for line in lines[1:] if key else lines:
        if size + len(line) + 1 > room and parts[-1]:
            closing = (["```"] if fence is not None else []) + ["</details>"] * folds
            parts[-1] += closing
            reopen = ["<details><summary>(continued)</summary>", ""] * folds
            if fence is not None:
                reopen.append(fence)
            parts.append(reopen)
            size = sum(len(x) + 1 for x in reopen)
        m = FENCE.match(line)
        if m:
            fence = None if fence is not None else line
        folds += line.count("<details>") - line.count("</details>")
        parts[-1].append(line[:room])
        size += len(line) + 1
    n = len(parts)
    out = []
    for i, body in enumerate(parts, start=1):
        head = [f"<!-- orch-plan:{key} part {i}/{n} -->"] if key else []
        if i > 1:
            head.append(f"_Continued from the previous comment (part {i} of {n})._\n")
        out.append("\n".join(head + body) + "\n")
    return out


def marker_of(body: str) -> tuple[str, int] | None:
    m = MARKER.match(body)
    if not m:
        return None
    return m.group("key"), int(m.group("part") or 1)


# -- the two APIs ---------------------------------------------------------------------------
@dataclass
class Api:
    base: str
    headers: dict[str, str]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base.rstrip("/") + path, data=data, method=method,
                                     headers={**self.headers,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise ApiError(f"{method} {path}: HTTP {exc.code} {detail}") from None
        except urllib.error.URLError as exc:
            raise ApiError(f"{method} {path}: {exc.reason}") from None
        return json.loads(raw) if raw.strip() else None


class GitHub:
    def __init__(self, api: Api, repo: str, number: int) -> None:
        self.api, self.path = api, f"/repos/{repo}/issues"
        self.number = number

    def comments(self) -> list[tuple[Any, str]]:
        out, page = [], 1
        while True:
            batch = self.api.call("GET", f"{self.path}/{self.number}/comments"
                                         f"?per_page=100&page={page}")
            out += [(c["id"], c.get("body") or "") for c in batch]
            if len(batch) < 100:
                return out
            page += 1

    def create(self, body: str) -> Any:
        return self.api.call("POST", f"{self.path}/{self.number}/comments", {"body": body})["id"]

    def update(self, cid: Any, body: str) -> None:
        self.api.call("PATCH", f"{self.path}/comments/{cid}", {"body": body})

    def delete(self, cid: Any) -> None:
        self.api.call("DELETE", f"{self.path}/comments/{cid}")


class GitLab:
    def __init__(self, api: Api, project: str, iid: int) -> None:
        self.api = api
        self.path = f"/projects/{project}/merge_requests/{iid}/notes"

    def comments(self) -> list[tuple[Any, str]]:
        out, page = [], 1
        while True:
            batch = self.api.call("GET", f"{self.path}?per_page=100&page={page}")
            out += [(c["id"], c.get("body") or "") for c in batch]
            if len(batch) < 100:
                return out
            page += 1

    def create(self, body: str) -> Any:
        return self.api.call("POST", self.path, {"body": body})["id"]

    def update(self, cid: Any, body: str) -> None:
        self.api.call("PUT", f"{self.path}/{cid}", {"body": body})

    def delete(self, cid: Any) -> None:
        self.api.call("DELETE", f"{self.path}/{cid}")


def publish(forge: GitHub | GitLab, text: str, limit: int = LIMIT) -> list[str]:
    """Post or update the plan comment(s); returns what was done, one line each."""
    parts = split(text, limit)
    key = marker_of(parts[0])
    if key is None:
        raise ApiError("the comment has no orch-plan marker on its first line "
                       "(make it with `orch plan --format markdown`)")
    mine: dict[int, Any] = {}
    for cid, body in forge.comments():
        m = marker_of(body)
        if m and m[0] == key[0] and m[1] not in mine:
            mine[m[1]] = cid
    done = []
    for i, part in enumerate(parts, start=1):
        if i in mine:
            forge.update(mine.pop(i), part)
            done.append(f"updated part {i}/{len(parts)}")
        else:
            forge.create(part)
            done.append(f"created part {i}/{len(parts)}")
    for i, cid in sorted(mine.items()):
        forge.delete(cid)
        done.append(f"deleted old part {i}")
    return done


def _forge(args: argparse.Namespace) -> GitHub | GitLab:
    env = os.environ
    provider = args.provider or ("gitlab" if env.get("GITLAB_CI") else "github")
    if provider == "gitlab":
        token = env.get("GITLAB_TOKEN") or env.get("ORCH_GITLAB_TOKEN")
        if not token:
            raise ApiError("GITLAB_TOKEN is not set (a project access token with api scope)")
        api = Api(env.get("CI_API_V4_URL", "https://gitlab.com/api/v4"),
                  {"PRIVATE-TOKEN": token})
        iid = args.pr or env.get("CI_MERGE_REQUEST_IID")
        if not iid or not env.get("CI_PROJECT_ID"):
            raise ApiError("not a merge-request pipeline: CI_MERGE_REQUEST_IID or "
                           "CI_PROJECT_ID is not set")
        return GitLab(api, env["CI_PROJECT_ID"], int(iid))
    token = env.get("GITHUB_TOKEN")
    if not token:
        raise ApiError("GITHUB_TOKEN is not set (give the job `pull-requests: write`)")
    number = args.pr
    if not number and env.get("GITHUB_EVENT_PATH"):
        with open(env["GITHUB_EVENT_PATH"], encoding="utf-8") as f:
            number = (json.load(f).get("pull_request") or {}).get("number")
    if not number or not env.get("GITHUB_REPOSITORY"):
        raise ApiError("not a pull request: no number in GITHUB_EVENT_PATH (or --pr) "
                       "or GITHUB_REPOSITORY is not set")
    api = Api(env.get("GITHUB_API_URL", "https://api.github.com"),
              {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28"})
    return GitHub(api, env["GITHUB_REPOSITORY"], int(number))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("markdown", help="the file `orch plan --format markdown` wrote")
    ap.add_argument("--provider", choices=("github", "gitlab"),
                    help="default: gitlab when GITLAB_CI is set, else github")
    ap.add_argument("--pr", type=int, help="pull/merge request number (default: from the CI)")
    ap.add_argument("--limit", type=int, default=LIMIT, help="characters per comment")
    args = ap.parse_args(argv)
    try:
        with open(args.markdown, encoding="utf-8") as f:
            text = f.read()
        for line in publish(_forge(args), text, args.limit):
            print(f"orch-pr-comment: {line}")
    except (ApiError, OSError) as exc:
        print(f"orch-pr-comment: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
