"""Gradio hardening: the launched app (real server, random local port) probed with plain HTTP.

* Files outside the app are never served: every file-serving route of the installed Gradio
  (`/gradio_api/file=`, `/gradio_api/file/`, `/static/`, `/assets/`, `/svelte/`, the proxy,
  custom components, and case variants) refuses absolute paths, `../` and its URL-encoded,
  double-encoded and backslash forms, escapes from Gradio's own cache dir, /etc/passwd, the
  repo's pyproject.toml and the index in the data dir (blocked_paths) — raw requests, so
  nothing normalises the path on the way; a secret temp file is the target.
* With a login set, every route the FastAPI app has (listed from `demo.app.routes`) answers
  401/403 without one, except the login page and the files it loads — which carry no app
  data (ui/guard.py RequestGuard: Gradio itself leaves some routes open and puts the API
  schema into the login page). A bad password or a forged cookie get nothing; the real
  login cookie opens the config, the API info and the named endpoints.
* No component takes a file, so the upload routes refuse files (Gradio would otherwise
  store any posted file in its cache, with no size limit) and multipart bodies elsewhere
  are capped by launch_options' max_file_size.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import quote

import gradio as gr
import httpx
import pytest

from assistant.settings import Settings
from tests.support.ui import PASSWORD, USER, App, client
from ui.app import EXAMPLES, launch_options

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
REFUSED = {400, 403, 404}
PASSWD_MARK = b"root:x:0:0"
# Present in the app's config / API schema: none may reach a client that is not signed in.
APP_MARKERS = ('"/ask"', "parameter_name", "pa-question", "Papers to retrieve",
               EXAMPLES[0], "A Stub Paper", "test_connection")


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    data_dir = tmp_path_factory.mktemp("hardening") / "data"
    data_dir.mkdir()
    (data_dir / "catalog.sqlite").write_bytes(b"SQLite format 3\x00 index-secret-rows")
    return Settings(_env_file=None, data_dir=data_dir, answer_mode="extractive")


@pytest.fixture(scope="module")
def secret(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("outside") / "secret.txt"
    path.write_text(f"hardening-secret-{uuid.uuid4().hex}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def app(settings):
    served = App(settings)
    yield served
    served.close()


@pytest.fixture(scope="module")
def auth_app(settings):
    served = App(settings, auth=f"{USER}:{PASSWORD}")
    yield served
    served.close()


# --- files outside the app ----------------------------------------------------------------


def export_url_path(app: App) -> str:
    """The path of the conversation export Gradio serves from its cache (from /config)."""
    status, _, body = app.raw("GET", "/config")
    assert status == 200
    for comp in json.loads(body)["components"]:
        if comp.get("type") == "downloadbutton":
            url = comp["props"]["value"]["url"]
            return url[url.index("/gradio_api/"):]
    raise AssertionError("no export button in the config")


def file_targets(secret: Path, settings: Settings, cache_file: str) -> list[str]:
    """Ways to name a file outside the app, as the tail of a file route's URL."""
    ups = "../" * 12
    rel_secret = str(secret).lstrip("/")
    pyproject = ROOT / "pyproject.toml"
    index_file = Path(settings.data_dir).resolve() / "catalog.sqlite"
    escape = cache_file.rsplit("/", 1)[0] + "/" + "../" * 6 + rel_secret  # out of the cache
    return [
        str(secret),
        ups + rel_secret,
        "/" + ups + rel_secret,
        escape,
        quote(escape, safe=""),
        quote(str(secret), safe=""),
        (ups + rel_secret).replace(".", "%2e").replace("/", "%2f"),
        (ups + rel_secret).replace(".", "%2E").replace("/", "%2F"),
        (ups + rel_secret).replace(".", "%252e").replace("/", "%252f"),  # double-encoded
        "..%2f" * 12 + rel_secret,
        "..\\" * 12 + rel_secret.replace("/", "\\"),
        "....//" * 12 + rel_secret,
        str(secret) + "%00.png",
        "file://" + str(secret),
        "/etc/passwd",
        ups + "etc/passwd",
        "%2e%2e%2f" * 12 + "etc%2fpasswd",
        "/ETC/PASSWD",
        "pyproject.toml",
        "./pyproject.toml",
        "%2e/pyproject.toml",
        str(pyproject),
        str(pyproject).upper(),
        "PyProject.TOML",
        str(index_file),
        ups + str(index_file).lstrip("/"),
    ]


FILE_ROUTES = [
    "/gradio_api/file=", "/gradio_api/file/", "/file=", "/gradio_api/proxy=",
    "/static/", "/assets/", "/svelte/", "/gradio_api/custom_component/x/client/js/",
    "/GRADIO_API/FILE=", "/Gradio_Api/File=", "/gradio_api/FILE=", "/FILE=", "/STATIC/",
    "/Assets/",
]


def test_files_outside_the_app_are_refused(app, secret, settings):
    cache_path = export_url_path(app)
    # Positive controls: the routes do serve what they are for, so a refusal means something.
    status, _, body = app.raw("GET", cache_path)
    assert status == 200 and body.strip()
    assert app.raw("GET", "/static/img/logo_nosize.svg")[0] == 200
    assets = re.findall(r'src="\./(assets/[^"]+\.js)"', app.raw("GET", "/")[2].decode())
    assert assets and app.raw("GET", "/" + assets[0])[0] == 200

    cache_file = cache_path[len("/gradio_api/file="):]
    contents = [secret.read_bytes().strip(), PASSWD_MARK,
                (ROOT / "pyproject.toml").read_bytes()[:200], b"index-secret-rows"]
    probes = [route + target for route in FILE_ROUTES
              for target in file_targets(secret, settings, cache_file)]
    # The path itself climbing out of the app.
    probes += ["/../../../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
               "/gradio_api/../../../../etc/passwd", "/static/../../../../../pyproject.toml",
               "/assets/..%2f..%2f..%2f..%2f..%2fpyproject.toml", "//etc/passwd",
               "/gradio_api/file=" + str(secret).replace("/", "//")]
    answered = {}
    for path in probes:
        status, _, body = app.raw("GET", path)
        answered[path] = status
        for content in contents:
            assert content not in body, f"GET {path} returned the file ({status})"
        assert status in REFUSED, f"GET {path}: {status} {body[:200]!r}"
    assert len(answered) >= 300
    # The secret's own name, however spelled, is never "allowed" — only refused or unknown.
    assert 403 in answered.values()


# --- the login guards every route ------------------------------------------------------------


def walk(routes, prefix: str = ""):
    """(path, methods) of every route, through included routers and mounts."""
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI >= 0.16x: an included router
            yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "routes") and hasattr(route, "path"):  # a Mount
            yield prefix + route.path + "/{rest}", {"GET"}
        elif hasattr(route, "path"):
            yield prefix + route.path, set(getattr(route, "methods", None) or {"GET"})


def concrete(path: str) -> str:
    """A route template with placeholder values ({size} and the like must be integers)."""
    return re.sub(r"\{([^}:]+)(?::[^}]+)?\}",
                  lambda m: "1" if m.group(1) in ("size", "component_id", "run") else "x", path)


PUBLIC = {"/", "/login", "/login/", "/logout", "/favicon.ico", "/robots.txt",
          "/manifest.json", "/theme.css", "/gradio_api/theme.css", "/gradio_api/startup-events"}
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon")


def is_public(path: str) -> bool:
    """The login page and what it loads (checked with a browser) — nothing else."""
    return path in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def assert_no_app_data(where: str, body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    for marker in APP_MARKERS:
        assert marker not in text, f"{where} leaks {marker!r} without a login"


API_CALLS = [  # (method, path, JSON body) — the API as a client would call it
    ("GET", "/config", None),
    ("GET", "/gradio_api/info", None),
    ("GET", "/gradio_api/info?all_endpoints=true", None),
    ("GET", "/gradio_api/openapi.json", None),
    ("GET", "/openapi.json", None),
    ("GET", "/gradio_api/runs", None),
    ("GET", "/gradio_api/app_id", None),
    ("GET", "/gradio_api/heartbeat/abc123", None),
    ("GET", "/gradio_api/queue/data?session_hash=abc123", None),
    ("GET", "/gradio_api/queue/status", None),
    ("GET", "/gradio_api/call/ask/0123456789abcdef", None),
    ("POST", "/gradio_api/queue/join",
     {"data": ["q?", 6, "extractive", 0.1, []], "fn_index": 0, "session_hash": "abc123",
      "event_data": None, "trigger_id": None}),
    ("POST", "/gradio_api/call/ask", {"data": ["q?", 6, "extractive", 0.1]}),
    ("POST", "/gradio_api/call/v2/ask", {"data": ["q?", 6, "extractive", 0.1]}),
    ("POST", "/gradio_api/run/ask", {"data": ["q?", 6, "extractive", 0.1]}),
    ("POST", "/gradio_api/api/ask", {"data": ["q?", 6, "extractive", 0.1]}),
    ("POST", "/gradio_api/call/new_chat", {"data": []}),
    ("POST", "/gradio_api/run/new_chat", {"data": []}),
    ("POST", "/gradio_api/call/test_connection", {"data": []}),
    ("POST", "/gradio_api/run/test_connection", {"data": []}),
    ("POST", "/gradio_api/cancel", {"session_hash": "abc123", "fn_index": 0,
                                    "event_id": "x"}),
    ("POST", "/gradio_api/reset", {"event_id": "x"}),
    ("POST", "/gradio_api/component_server", {"session_hash": "abc123", "component_id": 1,
                                               "fn_name": "x", "data": None}),
]


def test_every_route_needs_the_login(auth_app):
    routes = sorted({(path, m) for path, methods in walk(auth_app.demo.app.routes)
                     for m in methods if m != "HEAD"})
    assert len(routes) >= 60, routes  # the listing really reached Gradio's routers
    paths = {p for p, _ in routes}
    assert {"/config", "/gradio_api/info", "/gradio_api/queue/join",
            "/gradio_api/call/{api_name}", "/gradio_api/file={path_or_url:path}"} <= paths

    guarded = []
    for template, method in routes:
        path = concrete(template)
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        status, headers, content = auth_app.raw(
            method, path, body=body, headers={"Content-Type": "application/json"}, timeout=5)
        assert_no_app_data(f"{method} {path}", content)
        if is_public(template) or is_public(path):
            assert status != 500, f"{method} {path}: {status}"
            continue
        guarded.append(path)
        redirect_to_login = status in (302, 303, 307) and headers.get("location", "") in (
            "/", "./", "/login")
        assert status in (401, 403) or redirect_to_login, \
            f"{method} {template} answered {status} without a login: {content[:200]!r}"
    assert len(guarded) >= 40

    for method, path, payload in API_CALLS:
        body = json.dumps(payload).encode() if payload is not None else None
        status, _, content = auth_app.raw(method, path, body=body,
                                          headers={"Content-Type": "application/json"},
                                          timeout=5)
        assert status in (401, 403), f"{method} {path}: {status} {content[:200]!r}"
        assert_no_app_data(f"{method} {path}", content)

    # The login page itself: served, but without the API schema Gradio would embed in it.
    status, _, page = auth_app.raw("GET", "/")
    assert status == 200 and b"gradio_config" in page and b'"auth_required":true' in page
    assert_no_app_data("the login page", page)
    with pytest.raises(Exception):  # noqa: B017 — gradio_client cannot get in either
        client(auth_app.url + "/").predict("q?", 6, "extractive", 0.1, api_name="/ask")


def login(app: App, password: str) -> httpx.Client:
    c = httpx.Client(base_url=app.url, timeout=20)
    c.post("/login", data={"username": USER, "password": password})
    return c


def test_bad_credentials_and_forged_cookies_get_nothing(auth_app):
    bad = login(auth_app, "wrong")
    assert not bad.cookies
    assert bad.get("/config").status_code == 401
    good = login(auth_app, PASSWORD)
    names = list(good.cookies.keys())
    assert names and all(n.startswith("access-token") for n in names)
    forged = {name: "forged-" + uuid.uuid4().hex for name in names}
    for path in ("/config", "/gradio_api/info", "/gradio_api/app_id"):
        status, _, content = auth_app.raw(
            "GET", path, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in forged.items())})
        assert status == 401, path
        assert_no_app_data(path, content)


def test_with_the_login_cookie_everything_works(auth_app):
    c = login(auth_app, PASSWORD)
    config = c.get("/config")
    assert config.status_code == 200 and "pa-question" in config.text
    info = c.get("/gradio_api/info").json()
    assert {"/ask", "/new_chat", "/test_connection"} <= set(info["named_endpoints"])
    page = c.get("/")
    assert page.status_code == 200 and '"/ask"' in page.text  # the signed-in page: full
    assert c.get("/gradio_api/app_id").status_code == 200
    event = c.post("/gradio_api/call/ask", json={"data": ["q?", 6, "extractive", 0.1]})
    assert event.status_code == 200
    stream = c.get(f"/gradio_api/call/ask/{event.json()['event_id']}")
    assert stream.status_code == 200 and "event: complete" in stream.text
    assert "A Stub Paper" in stream.text
    new = c.post("/gradio_api/call/new_chat", json={"data": []})
    assert new.status_code == 200 and c.get(
        f"/gradio_api/call/new_chat/{new.json()['event_id']}").status_code == 200
    ok = client(auth_app.url + "/", auth=(USER, PASSWORD)).predict(
        "q?", 6, "extractive", 0.1, api_name="/ask")
    assert ok[4]["citations"][0]["title"] == "A Stub Paper"
    # Signed in or not, uploads stay refused.
    up = c.post("/gradio_api/upload", files={"files": ("a.txt", b"x")})
    assert up.status_code == 403
    # Signing out revokes the cookie: replayed, it opens nothing.
    cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
    assert auth_app.raw("GET", "/config", headers={"Cookie": cookie})[0] == 200
    c.get("/logout")
    assert auth_app.raw("GET", "/config", headers={"Cookie": cookie})[0] == 401


# --- uploads ----------------------------------------------------------------------------------

UPLOAD_COMPONENTS = tuple(getattr(gr, name) for name in (
    "File", "Files", "UploadButton", "Image", "ImageEditor", "Audio", "Video", "Model3D",
    "MultimodalTextbox", "Gallery", "ImageSlider", "Dataframe") if hasattr(gr, name))


def test_no_upload_route_accepts_files(app, settings):
    # Nothing in the app takes a file...
    blocks = list(app.demo.blocks.values())
    assert blocks and not [b for b in blocks if isinstance(b, UPLOAD_COMPONENTS)]
    # ...so the upload routes refuse one, and nothing lands in Gradio's upload dir.
    name = f"probe-{uuid.uuid4().hex}.txt"
    for path in ("/gradio_api/upload", "/gradio_api/upload?upload_id=abc",
                 "/gradio_api/process_recording", "/gradio_api/upload/"):
        r = httpx.post(app.url + path, files={"files": (name, b"A" * 3_000_000)}, timeout=20)
        assert r.status_code == 403, (path, r.status_code, r.text[:200])
        assert name not in r.text
    upload_dir = Path(app.demo.app.uploaded_file_dir)
    assert not upload_dir.exists() or not list(upload_dir.rglob(name))
    status, _, _ = app.raw("GET", f"/gradio_api/file={upload_dir}/{name}")
    assert status in REFUSED
    # Any other multipart body is capped by max_file_size.
    assert launch_options(settings)["max_file_size"]
    r = httpx.post(app.url + "/gradio_api/component_server",
                   files={"file": ("big.bin", b"A" * 2_000_000)}, data={"data": "{}"},
                   timeout=20)
    assert r.status_code == 413, (r.status_code, r.text[:200])
