"""RequestGuard: an ASGI middleware that closes holes Gradio 6 leaves open in this app
(login on every route, no uploads, no unused proxy). Tested by tests/test_ui_hardening.py."""

from __future__ import annotations

import re
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
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        from starlette.requests import HTTPConnection
        from starlette.responses import JSONResponse, PlainTextResponse

        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        path = "/" + path.lstrip("/")  # //gradio_api/... is checked as /gradio_api/...
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
