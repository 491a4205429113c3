"""RequestGuard: an ASGI middleware that closes holes Gradio 6 leaves open in this app
(login on every route, no uploads, no unused proxy, bounded request bodies, throttled
logins). Tested by tests/test_ui_hardening.py and tests/test_hardening2.py."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from typing import Any

# No component of this app takes a file: Gradio's upload routes would still store any file
# anyone posts (unbounded by default) in its cache and serve it back. Refused outright.
UPLOAD_ROUTES = ("/gradio_api/upload", "/gradio_api/process_recording")
# Gradio's reverse proxy serves Spaces loaded with gr.load (none here); it answers some
# malformed paths (a NUL byte) with a 500 from an unhandled exception.
UNUSED_PREFIXES = ("/gradio_api/proxy=",)
MAX_FILE_SIZE = "1mb"  # Gradio's own cap on any multipart body left (component_server)
# Without a login, only what the login page itself loads (probed with a browser) and the
# start-up ping Gradio's launch() sends to its own server.
PUBLIC_PATHS = frozenset({
    "/", "/login", "/login/", "/logout", "/favicon.ico", "/robots.txt", "/manifest.json",
    "/theme.css", "/gradio_api/theme.css", "/gradio_api/login_check",
    "/gradio_api/login_check/", "/gradio_api/startup-events",
})
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon")
# Request bodies: the largest thing this app legitimately receives is a question (capped in
# characters, JSON-escaped at most 6 bytes each) plus a few settings. Checked before the
# body is read, so Starlette never spools an oversized body to a temp file (it did for
# /login: 300 MB written to disk before "Incorrect credentials").
MAX_BODY_BYTES = 1_000_000
MAX_LOGIN_BODY_BYTES = 8_192  # a username and a password, form-encoded
LOGIN_PATHS = frozenset({"/login", "/login/"})
# Login attempts per client address: a burst, then one attempt per LOGIN_REFILL_S seconds
# (500 wrong passwords went through in 2.9 s without this).
LOGIN_BURST = 10
LOGIN_REFILL_S = 3.0
_THROTTLE_CLIENTS = 4096  # addresses remembered; the least recently seen are forgotten
_API_INFO = re.compile(rb"window\.gradio_api_info = .*?;</script>", re.DOTALL)
_NO_API_INFO = (b'window.gradio_api_info = {"named_endpoints": {}, "unnamed_endpoints": {}};'
                b"</script>")


class RequestGuard:
    """ASGI middleware closing holes Gradio 6 leaves open (tests/test_ui_hardening.py).

    * File uploads are refused (UPLOAD_ROUTES): nothing here takes a file; the unused
      reverse proxy is gone (UNUSED_PREFIXES).
    * With a login set, Gradio checks it only on some routes; the login page itself embeds
      the whole API schema (window.gradio_api_info) that the guarded /gradio_api/info
      withholds, and /gradio_api/runs, /app_id, /heartbeat/..., /cancel, /reset, /stream/...
      answer anyone. So every path except PUBLIC_PATHS/PUBLIC_PREFIXES needs a valid login
      cookie (a Gradio-style 401 otherwise), and the login page is served with an empty
      schema (signing in reloads the page, which then carries the real one).
    * Every request body is capped before it is read: a Content-Length over the cap gets a
      413 at once, a chunked body is counted as it arrives and cut off with a 413 at the
      cap (MAX_BODY_BYTES; MAX_LOGIN_BODY_BYTES for the login form).
    * Login attempts are throttled per client address (LoginThrottle): 429 beyond it.
    """

    def __init__(self, app: Any, max_body: int = MAX_BODY_BYTES,
                 max_login_body: int = MAX_LOGIN_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body
        self.max_login_body = max_login_body
        self.throttle = LoginThrottle()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            await self._bounded(scope, receive, send)
            return
        await self._guarded(scope, receive, send)

    async def _bounded(self, scope: dict, receive: Any, send: Any) -> None:
        """The body cap and the login throttle, then the other checks (_guarded)."""
        from starlette.responses import PlainTextResponse

        path = _app_path(scope)
        if path.rstrip("/").lower() in UPLOAD_ROUTES:
            await self._guarded(scope, receive, send)  # refused unread, whatever the size
            return
        login = path in LOGIN_PATHS
        cap = self.max_login_body if login else self.max_body
        if login and scope.get("method") == "POST":
            client = (scope.get("client") or ("unknown", 0))[0]
            wait = self.throttle.wait(client)
            if wait > 0:
                await PlainTextResponse(
                    f"Too many sign-in attempts from {client}; try again in {wait:.0f} s.",
                    429, headers={"Retry-After": str(max(1, round(wait)))},
                )(scope, receive, send)
                return
        length = None
        for key, value in scope.get("headers") or []:
            if key.lower() == b"content-length":
                length = value
        if length is not None and (not length.strip().isdigit() or int(length) > cap):
            await _too_large(cap)(scope, receive, send)
            return
        state = {"seen": 0, "over": False, "started": False}

        async def counted() -> dict:
            message = await receive()
            if message["type"] == "http.request" and not state["over"]:
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > cap:
                    # A chunked body past the cap: answer now and tell the app the client
                    # left, so it stops reading (nothing past the cap is ever buffered).
                    state["over"] = True
                    if not state["started"]:
                        state["started"] = True
                        await _too_large(cap)(scope, _disconnected, send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: dict) -> None:
            if state["over"]:
                return  # the 413 has been sent; whatever the app answers is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self._guarded(scope, counted, tracked)
        except Exception:
            if not state["over"]:
                raise
            # The app saw the client "disconnect" mid-body (ClientDisconnect): answered.

    async def _guarded(self, scope: dict, receive: Any, send: Any) -> None:
        from starlette.requests import HTTPConnection
        from starlette.responses import JSONResponse, PlainTextResponse

        path = _app_path(scope)
        gradio_app = scope.get("app")
        # Gradio checks a login of its own (auth_dependency) itself.
        walled = (getattr(gradio_app, "auth", None) is not None
                  and getattr(gradio_app, "auth_dependency", None) is None)
        signed_in = False
        if walled:
            cookies = HTTPConnection(scope).cookies
            cookie_id = gradio_app.cookie_id
            token = (cookies.get(f"access-token-{cookie_id}")
                     or cookies.get(f"access-token-unsecure-{cookie_id}"))
            signed_in = token is not None and token in gradio_app.tokens
        if walled and not signed_in and path not in PUBLIC_PATHS and not path.startswith(
                PUBLIC_PREFIXES):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            detail = {"error": "Not authenticated",
                      "auth_message": gradio_app.get_blocks().auth_message}
            await JSONResponse({"detail": detail}, 401)(scope, receive, send)
            return
        if scope["type"] == "http" and path.rstrip("/").lower() in UPLOAD_ROUTES:
            await PlainTextResponse("This app takes no file uploads.", 403)(scope, receive, send)
            return
        if scope["type"] == "http" and path.lower().startswith(UNUSED_PREFIXES):
            await PlainTextResponse("Not Found", 404)(scope, receive, send)
            return
        if walled and not signed_in and path == "/" and scope.get("method") == "GET":
            await self.app(scope, receive, _strip_api_info(send))
            return
        await self.app(scope, receive, send)


def _app_path(scope: dict) -> str:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):] or "/"
    return "/" + path.lstrip("/")  # //gradio_api/... is checked as /gradio_api/...


def _too_large(cap: int) -> Any:
    from starlette.responses import PlainTextResponse

    # Connection: close — the rest of the body is never read, so the connection cannot be
    # reused for another request.
    return PlainTextResponse(f"Request body too large (limit {cap:,} bytes).", 413,
                             headers={"Connection": "close"})


async def _disconnected() -> dict:
    return {"type": "http.disconnect"}


class LoginThrottle:
    """A token bucket per client address: LOGIN_BURST attempts, refilled one per
    LOGIN_REFILL_S seconds. Thread-safe; remembers at most _THROTTLE_CLIENTS addresses."""

    def __init__(self, burst: int = LOGIN_BURST, refill_s: float = LOGIN_REFILL_S) -> None:
        self.burst = burst
        self.refill_s = refill_s
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Take one attempt for `client`: 0.0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) / self.refill_s)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > _THROTTLE_CLIENTS:
                self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) * self.refill_s


def _strip_api_info(send: Any) -> Any:
    """Wrap `send`: the page's body is buffered and its window.gradio_api_info emptied."""
    start: dict = {}
    body: list[bytes] = []

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        body.append(message.get("body", b""))
        if message.get("more_body"):
            return
        data = _API_INFO.sub(_NO_API_INFO, b"".join(body))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(data)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return wrapped
