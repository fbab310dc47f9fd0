"""What stands between the chat page and the network: its Content-Security-Policy, the throttle on wrong logins,
and the warning for a page served beyond this machine without a login.

``PageGuard`` is plain ASGI middleware on Gradio's FastAPI app (``launch(app_kwargs={"middleware": ...})``), so it
sees every response, streamed ones included, without buffering them.

* **Content-Security-Policy** on every response: scripts, styles, images, fonts and connections from the page's own
  origin only, so even text that slipped past escaping could not make a reader's browser fetch another origin (an
  ``<img src=http://…>`` in an abstract is a tracking and exfiltration channel). What Gradio 6 itself needs, checked
  in Chromium (console errors otherwise): inline scripts (its config is an inline ``<script>``) and string evaluation
  (``'unsafe-eval'``: gr.HTML compiles its template with ``Function``, and the page's own script passed as
  ``launch(js=...)`` runs the same way); inline styles (components set ``style`` attributes); ``data:`` and ``blob:``
  images (icons, uploads). So the policy cannot stop an injected script from running: keeping scripts out is the
  escaping's job (``assistant.ui.untrusted``, ``html.escape``); what it does stop is any request to another origin.
* **Login throttle**: Gradio's login is ``POST /login`` answering 400 to wrong credentials; its ``auth`` callable
  never sees who is asking, so the count is kept here, per client address. After ``max_failures`` wrong logins
  within ``window`` seconds, that address's logins are refused (429, with how long) for ``lockout`` seconds, right
  or wrong, and the page's login form says so beforehand (``LOGIN_MESSAGE``). Behind a reverse proxy every client
  shares the proxy's address, so one user's mistakes lock out everyone for a while: safe, if blunt.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "media-src 'self' data: blob:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])
MAX_FAILURES = 5
WINDOW_S = 60.0
LOCKOUT_S = 300.0
LOGIN_MESSAGE = (f"After {MAX_FAILURES} wrong logins within {WINDOW_S:.0f} seconds, logins from the same address are "
                 f"refused for {LOCKOUT_S / 60:.0f} minutes.")


class LoginThrottle:
    """Wrong logins per client: ``failed`` records one, ``refused`` says how many seconds a client must still wait."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_S, lockout: float = LOCKOUT_S,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000):
        self.max_failures, self.window, self.lockout, self.clock = max_failures, window, lockout, clock
        self.max_clients = max_clients
        self._failures: dict[str, list[float]] = {}
        self._locked: dict[str, float] = {}  # client → when its lockout ends
        self._lock = threading.Lock()

    def refused(self, client: str) -> float:
        """Seconds ``client`` must wait before its next login is looked at (0: go ahead)."""
        with self._lock:
            until = self._locked.get(client, 0.0)
            left = until - self.clock()
            if left <= 0 and client in self._locked:
                del self._locked[client]
            return max(0.0, left)

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < self.window] + [now]
            if len(recent) >= self.max_failures:
                self._locked[client] = now + self.lockout
                self._failures.pop(client, None)
            else:
                self._failures[client] = recent
            if len(self._failures) > self.max_clients:  # forget the stalest clients, never the locked ones
                for stale in sorted(self._failures, key=lambda c: self._failures[c][-1])[: len(self._failures) // 2]:
                    del self._failures[stale]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


class PageGuard:
    """ASGI middleware: the CSP header on every HTTP response, and the login throttle on ``POST …/login``."""

    def __init__(self, app, throttle: LoginThrottle | None = None, csp: str = CSP):
        self.app = app
        self.throttle = throttle or LoginThrottle()
        self.csp = csp.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        login = scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/login")
        client = (scope.get("client") or ("unknown", 0))[0]
        if login:
            wait = self.throttle.refused(client)
            if wait > 0:
                return await self._refuse(send, wait)
        status = 0

        async def send_guarded(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
                message = {**message, "headers": [*headers, (b"content-security-policy", self.csp)]}
            await send(message)

        await self.app(scope, receive, send_guarded)
        if login:
            if status == 400:  # Gradio's answer to wrong credentials
                self.throttle.failed(client)
            elif status == 200:
                self.throttle.succeeded(client)

    async def _refuse(self, send, wait: float) -> None:
        seconds = max(1, round(wait))
        body = json.dumps({"detail": f"Too many wrong logins from your address: try again in {seconds} s."}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(seconds).encode()), (b"content-security-policy", self.csp)]})
        await send({"type": "http.response.body", "body": body})


def public_host_warning(host: str, has_login: bool) -> str:
    """The warning for serving on ``host`` without a login when that opens the page beyond this machine; "" when
    the host is loopback or a login is set."""
    if has_login or is_loopback(host):
        return ""
    return (f"warning: the chat page on {host} is open to the network without a login: anyone who can reach this "
            "machine can read the library, the saved conversations and ask questions. Set "
            "ASSISTANT_UI_AUTH=user:password, or serve on 127.0.0.1.")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost); names other than localhost are
    not looked up, so they count as public."""
    host = (host or "").strip().strip("[]")
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
