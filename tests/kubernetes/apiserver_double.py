"""ApiServerDouble: a test double of the Kubernetes API server, small and as faithful as the
driver's tests need. It is NOT a Kubernetes API server; no such binary can run on this
machine (Debian 12 and PyPI ship none), so the driver is tested through the real
``kubernetes`` client against this double, and against a real cluster when
``ORCH_TEST_KUBECONFIG`` is set.

What it implements, after the API server's documented behaviour:

* discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``
  (APIVersions, APIGroupList, APIResourceList with ``/status`` subresources) for the kinds
  in :data:`KINDS`;
* GET of one object, LIST (``kind: <Kind>List``, ``labelSelector`` equality), DELETE (objects
  with finalizers get a ``deletionTimestamp`` and stay until the finalizers are removed;
  deleting a namespace deletes what is in it);
* server-side apply: PATCH ``application/apply-patch+yaml`` with ``fieldManager``; it creates
  or merges (maps merge, lists are atomic), records ``managedFields`` per manager in
  ``FieldsV1`` form, removes fields a manager applied before and no longer applies, and
  answers 409 with ``FieldManagerConflict`` causes when another manager owns a field with a
  different value, unless ``force=true`` (which takes the fields over);
* PATCH ``application/merge-patch+json`` (operation Update, fields taken over without
  conflict), also on ``/status``;
* errors as real ``Status`` objects (NotFound, Conflict, Invalid, BadRequest,
  Unauthorized, UnsupportedMediaType, InternalError ...);
* bearer-token authentication (401 without the token);
* simulated controllers: a Deployment rolls out after ``rollout_delay`` seconds; a
  CustomResourceDefinition becomes Established at once;
* injectable faults (:meth:`ApiServerDouble.inject`) and a per-request delay
  (``slow``), and a log of the requests it served (``requests``), without the token.
"""

from __future__ import annotations

import copy
import http.server
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    status: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = (
    Kind("", "v1", "Namespace", "namespaces", False),
    Kind("", "v1", "ConfigMap", "configmaps", True, status=False),
    Kind("", "v1", "Secret", "secrets", True, status=False),
    Kind("", "v1", "Service", "services", True),
    Kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
    Kind("apps", "v1", "Deployment", "deployments", True),
    Kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
         "customresourcedefinitions", False),
    Kind("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False, status=False),
    Kind("kubevirt.io", "v1", "VirtualMachine", "virtualmachines", True),
    Kind("cdi.kubevirt.io", "v1beta1", "DataVolume", "datavolumes", True),
    Kind("k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition",
         "network-attachment-definitions", True, status=False),
)
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
APPLY = "application/apply-patch+yaml"
MERGE = ("application/merge-patch+json", "application/strategic-merge-patch+json",
         "application/json-patch+json")
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 415: "UnsupportedMediaType",
           422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}

Path = tuple[str, ...]


class ApiError(Exception):
    def __init__(self, code: int, message: str, details: dict[str, Any] | None = None,
                 reason: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}
        self.reason = reason or REASONS.get(code, "Unknown")


def status(code: int, message: str, reason: str = "",
           details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``meta/v1`` Status object, as the API server sends on errors."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Success" if code < 400 else "Failure",
                            "message": message, "reason": reason or REASONS.get(code, ""),
                            "code": code}
    if details:
        body["details"] = details
    return body


# -- field sets --------------------------------------------------------------------------
def leaves(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Paths of the leaf fields of ``value``; lists and empty maps are leaves (atomic)."""
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            yield from leaves(sub, (*prefix, str(key)))
    else:
        yield prefix


def owned_paths(config: dict[str, Any]) -> set[Path]:
    skip = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
    return {p for p in leaves(config) if p not in skip and p[:2] != ("metadata", "managedFields")}


def get_path(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def remove_path(obj: dict[str, Any], path: Path) -> None:
    parents = []
    cur: Any = obj
    for key in path[:-1]:
        if not isinstance(cur, dict) or key not in cur:
            return
        parents.append((cur, key))
        cur = cur[key]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
    for parent, key in reversed(parents):  # drop maps left empty by the removal
        if parent[key] == {}:
            del parent[key]


def merge(into: dict[str, Any], patch: dict[str, Any], *, null_deletes: bool) -> None:
    for key, value in patch.items():
        if value is None and null_deletes:
            into.pop(key, None)
        elif isinstance(value, dict) and value and isinstance(into.get(key), dict):
            merge(into[key], value, null_deletes=null_deletes)
        else:
            into[key] = copy.deepcopy(value)


def fields_v1(paths: set[Path]) -> dict[str, Any]:
    """The ``FieldsV1`` encoding of a field set: ``{"f:spec": {"f:replicas": {}}}``."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        cur = root
        for key in path:
            cur = cur.setdefault(f"f:{key}", {})
    return root


@dataclass
class Stored:
    obj: dict[str, Any]
    kind: Kind
    #: manager -> (operation, owned field paths)
    owners: dict[str, tuple[str, set[Path]]] = field(default_factory=dict)


@dataclass
class Fault:
    code: int
    times: int
    method: str = ""
    path_contains: str = ""
    message: str = "injected fault"
    retry_after: float | None = None


class ApiServerDouble:
    """The double; :meth:`start` binds 127.0.0.1 on a free port, :meth:`stop` closes it."""

    def __init__(self, token: str = "double-token-7f3a9c", rollout_delay: float = 0.3) -> None:
        self.token = token
        self.rollout_delay = rollout_delay
        self.slow = 0.0
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self._store: dict[tuple[str, str, str, str], Stored] = {}
        self._lock = threading.RLock()
        self._rv = 1000
        self._server: http.server.ThreadingHTTPServer | None = None
        self._timers: list[threading.Timer] = []
        for ns in ("default", "kube-system", "kube-public"):
            self._put(KINDS[0], {"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": ns}}, {})

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ApiServerDouble:
        double = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                double._serve(self, "GET")

            def do_PATCH(self) -> None:
                double._serve(self, "PATCH")

            def do_DELETE(self) -> None:
                double._serve(self, "DELETE")

            def do_POST(self) -> None:
                double._serve(self, "POST")

            def do_PUT(self) -> None:
                double._serve(self, "PUT")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def kubeconfig(self, token: str | None = None) -> str:
        """A kubeconfig (YAML text) whose current context points at the double."""
        return yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "double",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [{"name": "orch", "user": {"token": token or self.token}}],
            "contexts": [{"name": "double", "context": {"cluster": "double", "user": "orch"}}],
        })

    def inject(self, code: int, *, times: int = 1, method: str = "", path_contains: str = "",
               message: str = "injected fault", retry_after: float | None = None) -> None:
        """Answer the next ``times`` matching requests with ``code`` and a Status."""
        with self._lock:
            self.faults.append(Fault(code, times, method, path_contains, message, retry_after))

    # -- HTTP ----------------------------------------------------------------------------
    def _serve(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        ctype = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
        self.requests.append({"method": method, "path": parsed.path, "query": query,
                              "content_type": ctype, "body": raw.decode("utf-8", "replace")})
        if self.slow:
            time.sleep(self.slow)
        headers: dict[str, str] = {}
        try:
            self._authenticate(handler)
            self._fault(method, parsed.path, headers)
            code, body = self._route(method, parsed.path, query, ctype, raw)
        except ApiError as exc:
            code, body = exc.code, status(exc.code, exc.message, exc.reason, exc.details)
        data = json.dumps(body).encode()
        try:
            handler.send_response(code)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer

    def _authenticate(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized")

    def _fault(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and (not fault.method or fault.method == method) \
                        and fault.path_contains in path:
                    fault.times -= 1
                    if fault.retry_after is not None:
                        headers["Retry-After"] = str(int(fault.retry_after))
                    raise ApiError(fault.code, fault.message)

    def _route(self, method: str, path: str, query: dict[str, str], ctype: str,
               raw: bytes) -> tuple[int, dict[str, Any]]:
        parts = tuple(p for p in path.split("/") if p)
        if method == "GET":
            found = self._discovery(parts)
            if found is not None:
                return 200, found
        if parts[:2] == ("api", "v1"):
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        kind, namespace, name, sub = self._address(group, version, rest)
        if method == "GET":
            return 200, (self._get(kind, namespace, name) if name
                         else self._list(kind, namespace, query))
        if method == "PATCH" and name:
            return self._patch(kind, namespace, name, sub, query, ctype, raw)
        if method == "DELETE" and name:
            return 200, self._delete(kind, namespace, name)
        raise ApiError(405, f"{method} is not supported here by the double")

    def _address(self, group: str, version: str,
                 rest: Path) -> tuple[Kind, str, str, str]:
        """(kind, namespace, name, subresource) from the path after the group/version."""
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] != "status":
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = (*rest, "", "", "")[:3]
        for kind in KINDS:
            if (kind.group, kind.version, kind.plural) == (group, version, plural):
                if kind.namespaced and name and not namespace:
                    raise ApiError(404, "the server could not find the requested resource")
                if sub and (sub != "status" or not kind.status):
                    raise ApiError(404, "the server could not find the requested resource")
                return kind, namespace, name, sub
        raise ApiError(404, "the server could not find the requested resource")

    # -- discovery -----------------------------------------------------------------------
    def _discovery(self, parts: Path) -> dict[str, Any] | None:
        if parts == ("version",):
            return {"major": "1", "minor": "30", "gitVersion": "v1.30.0-apiserverdouble",
                    "platform": "linux/amd64"}
        if parts == ("api",):
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if parts == ("apis",):
            groups = []
            for group in dict.fromkeys(k.group for k in KINDS if k.group):
                versions = [{"groupVersion": k.group_version, "version": k.version}
                            for k in KINDS if k.group == group]
                versions = list({v["version"]: v for v in versions}.values())
                groups.append({"name": group, "versions": versions,
                               "preferredVersion": versions[0]})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if parts == ("api", "v1") or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
            kinds = [k for k in KINDS if (k.group, k.version) == (group, version)]
            if not kinds:
                raise ApiError(404, "the server could not find the requested resource")
            resources = []
            for k in kinds:
                resources.append({"name": k.plural, "singularName": k.kind.lower(),
                                  "namespaced": k.namespaced, "kind": k.kind, "verbs": VERBS})
                if k.status:
                    resources.append({"name": f"{k.plural}/status", "singularName": "",
                                      "namespaced": k.namespaced, "kind": k.kind,
                                      "verbs": ["get", "patch", "update"]})
            return {"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": kinds[0].group_version, "resources": resources}
        return None

    # -- objects -------------------------------------------------------------------------
    @staticmethod
    def _key(kind: Kind, namespace: str, name: str) -> tuple[str, str, str, str]:
        return kind.group, kind.plural, namespace, name

    def _details(self, kind: Kind, name: str) -> dict[str, Any]:
        return {"name": name, "group": kind.group, "kind": kind.plural}

    def _not_found(self, kind: Kind, name: str) -> ApiError:
        plural = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
        return ApiError(404, f'{plural} "{name}" not found', self._details(kind, name))

    def _get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            stored = self._store.get(self._key(kind, namespace, name))
            if stored is None:
                raise self._not_found(kind, name)
            return copy.deepcopy(stored.obj)

    def _list(self, kind: Kind, namespace: str, query: dict[str, str]) -> dict[str, Any]:
        wanted = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if p)
        with self._lock:
            items = [copy.deepcopy(s.obj) for s in self._store.values() if s.kind == kind
                     and (not namespace or s.obj["metadata"].get("namespace") == namespace)
                     and all((s.obj["metadata"].get("labels") or {}).get(k) == v
                             for k, v in wanted.items())]
            return {"kind": f"{kind.kind}List", "apiVersion": kind.group_version,
                    "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    def _delete(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            key = self._key(kind, namespace, name)
            stored = self._store.get(key)
            if stored is None:
                raise self._not_found(kind, name)
            meta = stored.obj["metadata"]
            if meta.get("finalizers"):
                meta.setdefault("deletionTimestamp", _now())
                self._bump(stored.obj)
                return copy.deepcopy(stored.obj)
            del self._store[key]
            if kind.kind == "Namespace":
                for other in [k for k in self._store if k[2] == name]:
                    del self._store[other]
            return status(200, "", details={**self._details(kind, name),
                                            "uid": meta.get("uid", "")})

    def _patch(self, kind: Kind, namespace: str, name: str, sub: str, query: dict[str, str],
               ctype: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if ctype == APPLY and not sub:
            return self._apply(kind, namespace, name, query, raw)
        if ctype not in MERGE or ctype == "application/json-patch+json":
            raise ApiError(415, f"the body of the request was in an unknown format - "
                                f"accepted media types include: {APPLY}, {', '.join(MERGE)}")
        try:
            patch = json.loads(raw or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"error decoding patch: {exc}") from None
        manager = query.get("fieldManager") or "unknown"
        with self._lock:
            stored = self._store.get(self._key(kind, namespace, name))
            if stored is None:
                raise self._not_found(kind, name)
            if sub == "status":
                patch = {"status": patch.get("status", {})}
            merge(stored.obj, patch, null_deletes=True)
            self._take(stored, manager, "Update", owned_paths(patch))
            self._bump(stored.obj, spec_changed="spec" in patch)
            meta = stored.obj["metadata"]
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                del self._store[self._key(kind, namespace, name)]  # the last finalizer went
            return 200, copy.deepcopy(stored.obj)

    def _apply(self, kind: Kind, namespace: str, name: str, query: dict[str, str],
               raw: bytes) -> tuple[int, dict[str, Any]]:
        manager = query.get("fieldManager", "")
        if not manager:
            raise ApiError(422, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                                "Required value: is required for apply patch")
        try:
            config = yaml.safe_load(raw or b"") or {}
        except yaml.YAMLError as exc:
            raise ApiError(400, f"error decoding YAML: {exc}") from None
        if not isinstance(config, dict):
            raise ApiError(400, "the body of an apply patch must be an object")
        meta = config.get("metadata") or {}
        if config.get("apiVersion") != kind.group_version or config.get("kind") != kind.kind:
            raise ApiError(400, f"apiVersion and kind of the object ({config.get('apiVersion')}"
                                f", {config.get('kind')}) do not match the URL "
                                f"({kind.group_version}, {kind.kind})")
        if meta.get("name") != name:
            raise ApiError(400, f"the name of the object ({meta.get('name')}) does not match "
                                f"the name on the URL ({name})")
        if kind.namespaced and meta.get("namespace", namespace) != namespace:
            raise ApiError(400, "the namespace of the provided object does not match the "
                                "namespace sent on the request")
        force = query.get("force") in ("true", "True", "1")
        with self._lock:
            if kind.namespaced and self._key(KINDS[0], "", namespace) not in self._store:
                raise ApiError(404, f'namespaces "{namespace}" not found',
                               {"name": namespace, "kind": "namespaces"})
            key = self._key(kind, namespace, name)
            stored = self._store.get(key)
            paths = owned_paths(config)
            if stored is None:
                obj = copy.deepcopy(config)
                obj.setdefault("metadata", {})
                if kind.namespaced:
                    obj["metadata"]["namespace"] = namespace
                stored = self._put(kind, obj, {manager: ("Apply", paths)})
                self._controllers(stored)
                return 201, copy.deepcopy(stored.obj)
            self._conflicts(stored, manager, paths, config, force)
            before = copy.deepcopy(stored.obj.get("spec"))
            previous = stored.owners.get(manager, ("Apply", set()))[1]
            others = set().union(*(p for m, (_, p) in stored.owners.items() if m != manager))
            for path in previous - paths - others:
                remove_path(stored.obj, path)
            merge(stored.obj, {k: v for k, v in config.items() if k != "status"},
                  null_deletes=False)
            self._take(stored, manager, "Apply", paths)
            self._bump(stored.obj, spec_changed=stored.obj.get("spec") != before)
            self._controllers(stored)
            return 200, copy.deepcopy(stored.obj)

    def _conflicts(self, stored: Stored, manager: str, paths: set[Path],
                   config: dict[str, Any], force: bool) -> None:
        found = []
        for other, (_, owned) in stored.owners.items():
            if other == manager:
                continue
            for path in sorted(owned & paths):
                if get_path(stored.obj, path) != get_path(config, path):
                    found.append((other, path))
        if found and not force:
            causes = [{"type": "FieldManagerConflict",
                       "message": f'conflict with "{m}" using {stored.kind.group_version}',
                       "field": "." + ".".join(p)} for m, p in found]
            text = "\n".join(f'* {c["field"]}: conflict with "{m}"'
                             for c, (m, _) in zip(causes, found, strict=True))
            raise ApiError(409, f"Apply failed with {len(found)} conflict(s):\n{text}",
                           {**self._details(stored.kind, stored.obj["metadata"]["name"]),
                            "causes": causes})

    def _take(self, stored: Stored, manager: str, operation: str, paths: set[Path]) -> None:
        """``manager`` owns ``paths`` now; other managers lose them."""
        for other, (_op, owned) in list(stored.owners.items()):
            if other != manager:
                owned -= paths
                if not owned:
                    del stored.owners[other]
        if operation == "Update" and manager in stored.owners:
            paths = paths | stored.owners[manager][1]
        stored.owners[manager] = (operation, set(paths))

    def _put(self, kind: Kind, obj: dict[str, Any],
             owners: dict[str, tuple[str, set[Path]]]) -> Stored:
        meta = obj.setdefault("metadata", {})
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        stored = Stored(obj, kind, owners)
        self._store[self._key(kind, meta.get("namespace", ""), meta["name"])] = stored
        self._bump(obj)
        self._managed(stored)
        return stored

    def _bump(self, obj: dict[str, Any], spec_changed: bool = False) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        if spec_changed:
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1

    def _managed(self, stored: Stored) -> None:
        stored.obj["metadata"]["managedFields"] = [
            {"manager": m, "operation": op, "apiVersion": stored.kind.group_version,
             "time": _now(), "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
            for m, (op, paths) in stored.owners.items()]

    # -- simulated controllers -----------------------------------------------------------
    def _controllers(self, stored: Stored) -> None:
        self._managed(stored)
        kind = stored.kind.kind
        key = self._key(stored.kind, stored.obj["metadata"].get("namespace", ""),
                        stored.obj["metadata"]["name"])
        if kind == "CustomResourceDefinition":
            stored.obj["status"] = {"conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]}
        elif kind == "Deployment":
            stored.obj["status"] = {**stored.obj.get("status", {}),
                                    "conditions": [{"type": "Progressing", "status": "True",
                                                    "reason": "ReplicaSetUpdated"}]}
            timer = threading.Timer(self.rollout_delay, self._roll_out, (key,))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def _roll_out(self, key: tuple[str, str, str, str]) -> None:
        with self._lock:
            stored = self._store.get(key)
            if stored is None:
                return
            replicas = (stored.obj.get("spec") or {}).get("replicas", 1)
            stored.obj["status"] = {
                "observedGeneration": stored.obj["metadata"]["generation"],
                "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": replicas, "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True",
                     "reason": "NewReplicaSetAvailable"}]}
            self._bump(stored.obj)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
