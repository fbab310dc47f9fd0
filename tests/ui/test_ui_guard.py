"""The page's guard: wrong logins throttled per client (on a live page with a login), the Content-Security-Policy
header, and the warning for a page served beyond this machine without a login."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from typer.testing import CliRunner

from assistant.ui.guard import LoginThrottle, is_loopback, public_host_warning
from tests.conftest import free_port


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_guard__five_wrong_logins_within_a_minute_lock_the_client_out():
    clock = Clock()
    throttle = LoginThrottle(max_failures=5, window=60, lockout=300, clock=clock)
    for _ in range(4):
        throttle.failed("10.0.0.5")
        clock.now += 10
    assert throttle.refused("10.0.0.5") == 0  # four in 40 s: still allowed
    throttle.failed("10.0.0.5")
    assert throttle.refused("10.0.0.5") == 300 and throttle.refused("10.0.0.6") == 0  # others are not affected
    clock.now += 299
    assert throttle.refused("10.0.0.5") == pytest.approx(1)
    clock.now += 2
    assert throttle.refused("10.0.0.5") == 0  # served its time; the count starts again
    throttle.failed("10.0.0.5")
    assert throttle.refused("10.0.0.5") == 0


def test_guard__failures_spread_out_or_followed_by_a_success_do_not_add_up():
    clock = Clock()
    throttle = LoginThrottle(max_failures=5, window=60, lockout=300, clock=clock)
    for _ in range(10):  # a minute and a second apart: never five within a minute
        throttle.failed("a")
        clock.now += 61
    assert throttle.refused("a") == 0
    for _ in range(4):
        throttle.failed("b")
    throttle.succeeded("b")
    throttle.failed("b")
    assert throttle.refused("b") == 0


def _login(url: str, user: str, password: str) -> tuple[int, dict, str]:
    data = urllib.parse.urlencode({"username": user, "password": password}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + "login", data=data), timeout=20) as reply:
            return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()


@pytest.fixture
def login_page(embedder, tmp_path):
    from assistant.app import App
    from assistant.core.settings import Settings
    from assistant.ui.page import launch

    app = App(Settings(home=tmp_path / "home"), embedder=embedder)
    port = free_port()
    demo = launch(app, host="127.0.0.1", port=port, auth="reader:correct-horse", prevent_thread_lock=True, quiet=True,
                  throttle=LoginThrottle(max_failures=5, window=60, lockout=3))
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.mark.slow
def test_guard__the_page_refuses_a_client_after_five_wrong_logins(login_page):
    with urllib.request.urlopen(login_page, timeout=20) as reply:  # the login page itself carries the policy
        assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
        assert "5 wrong logins within 60 seconds" in reply.read().decode()  # said on the page, beforehand
    assert _login(login_page, "reader", "correct-horse")[0] == 200
    for _ in range(5):
        assert _login(login_page, "reader", "guess")[0] == 400  # Gradio's "Incorrect credentials"
    status, headers, body = _login(login_page, "reader", "correct-horse")
    assert status == 429  # refused even with the right password, and told for how long
    assert "Too many wrong logins" in json.loads(body)["detail"] and int(headers["retry-after"]) >= 1
    time.sleep(3.2)
    assert _login(login_page, "reader", "correct-horse")[0] == 200  # the lockout ends


def test_guard__public_hosts_without_a_login_are_warned_about():
    for host in ("0.0.0.0", "::", "192.168.1.20", "10.0.0.2", "lab-server.example.org"):
        assert "open to the network without a login" in public_host_warning(host, has_login=False), host
        assert public_host_warning(host, has_login=True) == ""
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host) and public_host_warning(host, has_login=False) == "", host


def test_guard__assistant_ui_on_a_public_host_prints_the_warning(monkeypatch):
    import assistant.ui.page
    from assistant.cli import app as cli

    launched = []

    class Demo:
        def launch(self, **kwargs):
            launched.append(kwargs)

    monkeypatch.setattr(assistant.ui.page, "build_ui", lambda app: Demo())
    runner = CliRunner()
    out = runner.invoke(cli, ["ui", "--host", "0.0.0.0", "--port", "7999"])
    assert out.exit_code == 0, out.output
    assert "warning: the chat page on 0.0.0.0 is open to the network without a login" in out.stderr
    assert "ASSISTANT_UI_AUTH=user:password" in out.stderr
    assert launched[-1]["server_name"] == "0.0.0.0" and launched[-1]["auth"] is None

    monkeypatch.setenv("ASSISTANT_UI_AUTH", "reader:correct-horse")
    out = runner.invoke(cli, ["ui", "--host", "0.0.0.0", "--port", "7999"])
    assert out.exit_code == 0 and "warning" not in out.stderr
    assert launched[-1]["auth"] == ("reader", "correct-horse") and "wrong logins" in launched[-1]["auth_message"]
    out = runner.invoke(cli, ["ui", "--port", "7999"])
    assert "warning" not in out.stderr  # 127.0.0.1 by default
