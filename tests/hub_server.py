"""A real HTTP server on 127.0.0.1 that answers like the Hugging Face Hub does for ``hf_hub_download``.

Why a server and not mocks: downloading weights goes through huggingface_hub's own HTTP client, cache,
offline mode and error mapping; only a real socket exercises all of it, including timeouts.

What huggingface_hub 2.x requests (read from ``file_download.py``):

* ``HEAD {endpoint}/{repo_id}/resolve/{revision}/{filename}`` (revision URL-quoted). It needs
  ``X-Repo-Commit`` (the commit the revision resolves to) and ``ETag`` (or ``X-Linked-Etag``), and reads
  errors from ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``, ``GatedRepo``).
  A redirect to another host is not followed: the metadata is read from the redirect itself
  (``X-Linked-Etag``, ``X-Linked-Size``, ``Location``), as for LFS files on the real Hub.
* ``GET`` of the same URL (or of the redirect target) for the bytes.

Here small files (``config.json``) answer 200 directly with their git blob sha as ETag; ``*.safetensors``
files are "LFS": the resolve URL answers 302 to ``http://localhost:PORT/cdn/<sha256>`` (a different origin
than ``127.0.0.1``, like the real CDN), with the sha256 as ``X-Linked-Etag``.

Uploads (``HfApi.create_repo`` then ``upload_folder``, read from ``hf_api.py`` and ``_commit_api.py``):

* ``POST /api/repos/create`` with ``{"name", "organization", ...}``: 200 and ``{"url"}``, or 409 when the repo
  exists (``exist_ok=True`` takes that as success).
* ``POST /api/validate-yaml`` with a README's text: its metadata block is accepted.
* ``POST /api/models/{repo_id}/preupload/{revision}`` with the files' paths, sizes and samples: every file is
  answered ``uploadMode: "regular"`` (no LFS), so its bytes come with the commit.
* ``POST /api/models/{repo_id}/commit/{revision}``: NDJSON, a ``header`` line then one ``file`` line per file
  (base64 content); the files replace those of the revision's current commit in a new commit that
  ``revision`` then points to. The answer holds ``commitUrl`` and ``commitOid``.

Each repo can be switched to misbehave: ``"404"`` (not found), ``"private"`` (401 RepoNotFound, what the Hub
answers without a token), ``"401"`` (401 bad credentials), ``"500"`` (server error) or ``"hang"`` (accept the
connection, never answer).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

MODES = ("ok", "404", "private", "401", "500", "hang")


@dataclass
class Repo:
    """A model repo: revision name -> commit sha, commit sha -> {filename: bytes}."""

    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    mode: str = "ok"


class HubServer:
    """Threaded in-process Hub look-alike. ``url`` is what ``HF_ENDPOINT`` should be set to."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}  # sha256 -> bytes, served under /cdn/
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self._release = threading.Event()  # set on stop(): lets "hang" handlers finish
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cdn_url = f"http://localhost:{self.port}/cdn"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()

    # ---- content -------------------------------------------------------------------------------
    def add_revision(self, repo_id: str, revision: str, folder: str | Path) -> str:
        """Publish every file of ``folder`` as a new commit of ``repo_id`` and point ``revision`` at it
        (a branch or a tag: the Hub resolves both the same way). Returns the commit sha."""
        files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        return self.commit(repo_id, revision, files)

    def commit(self, repo_id: str, revision: str, files: dict[str, bytes]) -> str:
        """``files`` as a new commit of ``repo_id`` that ``revision`` points to; returns its sha."""
        digest = hashlib.sha1(repo_id.encode())
        for name, data in files.items():
            digest.update(name.encode() + hashlib.sha256(data).digest())
        commit = digest.hexdigest()
        with self._lock:
            repo = self.repos.setdefault(repo_id, Repo())
            repo.commits[commit] = files
            repo.refs[revision] = commit
            for data in files.values():
                self.blobs[hashlib.sha256(data).hexdigest()] = data
        return commit

    def set_mode(self, repo_id: str, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        with self._lock:
            self.repos.setdefault(repo_id, Repo()).mode = mode

    def paths_requested(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in list(self.requests) if method is None or m == method]

    def stop(self) -> None:
        """Close the listening socket: afterwards connections are refused, as for a Hub that is down."""
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_POST(self) -> None:
        hub = self.hub
        path = urlsplit(self.path).path
        hub.requests.append((self.command, path, dict(self.headers.items())))
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if path == "/api/repos/create":
            spec = json.loads(data)
            repo_id = f"{spec['organization']}/{spec['name']}" if spec.get("organization") else spec["name"]
            with hub._lock:
                exists = repo_id in hub.repos
                hub.repos.setdefault(repo_id, Repo())
            if exists:
                return self._json(409, {"error": "You already created this model repo"})
            return self._json(200, {"url": self._url(repo_id)})
        if path == "/api/validate-yaml":  # upload_folder checks a README's metadata block first
            content = json.loads(data)["content"]
            ok = not content.startswith("---") or content.count("---") >= 2
            errors = [] if ok else [{"message": "metadata block not closed"}]
            return self._json(200 if ok else 400, {"warnings": [], "errors": errors})
        parts = unquote(path).strip("/").split("/")  # api/models/{ns}/{name}/{preupload|commit}/{rev}
        if len(parts) != 6 or parts[:2] != ["api", "models"] or parts[4] not in ("preupload", "commit"):
            return self._send(404, {}, b"not an upload URL", body=True)
        repo_id, action, revision = f"{parts[2]}/{parts[3]}", parts[4], parts[5]
        repo = hub.repos.get(repo_id)
        if repo is None:
            return self._send(404, {"X-Error-Code": "RepoNotFound"}, b"Repository not found", body=True)
        if action == "preupload":
            files = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                for f in json.loads(data)["files"]
            ]
            return self._json(200, {"files": files})
        current = repo.commits.get(repo.refs.get(revision, ""), {})
        files = dict(current)
        for line in data.splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] != "header":
                return self._send(400, {}, f"unsupported commit item {item['key']}".encode(), body=True)
        commit = hub.commit(repo_id, revision, files)
        url = f"{self._url(repo_id)}/commit/{commit}"
        return self._json(200, {"commitUrl": url, "commitOid": commit, "pullRequestUrl": None})

    def _url(self, repo_id: str) -> str:
        return f"{self.hub.url}/{repo_id}"

    def _json(self, status: int, value: dict) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(value).encode(), body=True)

    # ---- routing -------------------------------------------------------------------------------
    def _answer(self, body: bool) -> None:
        hub = self.hub
        path = urlsplit(self.path).path
        hub.requests.append((self.command, path, dict(self.headers.items())))
        if path.startswith("/cdn/"):
            data = hub.blobs.get(path[len("/cdn/") :])
            if data is None:
                return self._send(404, body=body)
            return self._send(200, {"ETag": f'"{path[5:]}"'}, data, body=body)

        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":  # /{ns}/{name}/resolve/{rev}/{file...}
            return self._send(404, {"X-Error-Code": "EntryNotFound"}, b"not a resolve URL", body=body)
        repo_id = f"{parts[0]}/{parts[1]}"
        revision = unquote(parts[3])
        filename = unquote("/".join(parts[4:]))
        repo = hub.repos.get(repo_id)
        mode = repo.mode if repo else "404"

        if mode == "hang":
            hub._release.wait(timeout=120)  # hold the connection without a byte of answer
            return
        if mode == "500":
            return self._send(500, {}, b"Internal Server Error", body=body)
        if mode == "401":
            headers = {"X-Error-Message": "Invalid credentials in Authorization header"}
            return self._send(401, headers, b"Invalid credentials", body=body)
        if mode in ("404", "private"):
            status = 404 if mode == "404" else 401
            headers = {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}
            return self._send(status, headers, b"Repository not found", body=body)

        commit = repo.refs.get(revision) or (revision if revision in repo.commits else None)
        if commit is None:
            headers = {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"}
            return self._send(404, headers, b"Revision not found", body=body)
        data = repo.commits[commit].get(filename)
        if data is None:
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}
            return self._send(404, headers, b"Entry not found", body=body)

        if filename.endswith(".safetensors"):  # LFS: redirect to the CDN with the linked metadata
            sha = hashlib.sha256(data).hexdigest()
            headers = {
                "Location": f"{hub.cdn_url}/{sha}",
                "X-Repo-Commit": commit,
                "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(len(data)),
                "ETag": f'W/"{hashlib.sha1(data).hexdigest()}"',
            }
            return self._send(302, headers, b"", body=body)
        blob_sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id
        headers = {"X-Repo-Commit": commit, "ETag": f'"{blob_sha}"'}
        return self._send(200, headers, data, body=body)

    def _send(self, status: int, headers: dict[str, str] | None = None, data: bytes = b"", *, body: bool):
        try:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body and data:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up; nothing to answer
            pass


@dataclass
class HubEnv:
    """The server plus the environment that points huggingface_hub at it (for subprocesses)."""

    server: HubServer
    home: Path
    env: dict[str, str]

    @property
    def cache(self) -> Path:
        return self.home / "hub"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubEnv]:
    """A fresh Hub server and an empty HF_HOME, active in this process and in ``hub.env`` for children.

    huggingface_hub copies HF_ENDPOINT, HF_HOME and the timeouts into ``huggingface_hub.constants`` when it
    is imported, so setting the environment alone would not reach this process: the constants are patched
    too. Subprocesses read the environment fresh, which is the real user path.
    """
    from huggingface_hub import constants

    server = HubServer()
    home = tmp_path / "hf-home"
    env = {
        "HF_ENDPOINT": server.url,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_ETAG_TIMEOUT": "1",
        "HF_HUB_DOWNLOAD_TIMEOUT": "2",
        "HF_TOKEN": "",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("SKYFORECAST_WEIGHTS", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 2)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    child_env = {k: v for k, v in env.items() if k != "HF_TOKEN"}
    try:
        yield HubEnv(server=server, home=home, env=child_env)
    finally:
        server.stop()
