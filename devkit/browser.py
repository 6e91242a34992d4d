"""Open a local HTML file in headless Chromium and report what a reader's browser saw.

Used by tests that check rendered pages (the digest, the web app) and by
bench/serve_screenshots.py. Chromium is driven through the DevTools protocol over
``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-separated JSON): stdlib only, no port,
no websocket client.

    result = load_page(Path("digest.html"))
    result.dom              # serialised DOM after load (scripts, if any ran, included)
    result.title            # document.title after load
    result.console_errors   # console errors, uncaught exceptions, CSP violations
    screenshot(Path("digest.html"), Path("digest.png"))

Tests skip when ``chromium_path()`` is None (``pytest.skip(CHROMIUM_MISSING)``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_MISSING = "chromium is not on PATH (Debian: apt-get install chromium)"

# Flags that keep a test run offline, quiet and independent of the user's profile.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
)


class BrowserError(RuntimeError):
    """Chromium did not start, answer or load the page in time."""


@dataclass
class ConsoleMessage:
    level: str  # "error", "warning", "info", "log", "debug", ...
    text: str
    origin: str  # "console", "exception" or the Log domain source ("security", "network", ...)


@dataclass
class PageResult:
    dom: str
    title: str
    console: list[ConsoleMessage] = field(default_factory=list)
    # Extra expressions evaluated after load, by the caller's name.
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def console_errors(self) -> list[str]:
        return [f"{m.origin}: {m.text}" for m in self.console if m.level == "error"]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def load_page(
    path: Path | str,
    *,
    evaluate: dict[str, str] | None = None,
    timeout_s: float = 30.0,
    window_size: tuple[int, int] = (1200, 1800),
) -> PageResult:
    """Load ``path`` (a file, or an http(s) URL), wait for the load event, return DOM, title, console.

    ``evaluate`` maps names to JavaScript expressions evaluated in the page after
    load (by value); results land in ``PageResult.values``.
    """
    url = _address(path)
    with Chromium(timeout_s=timeout_s, window_size=window_size) as browser:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": url}, session=session)
        browser.wait_event("Page.loadEventFired", session)
        values = {
            name: browser.evaluate(expression, session)
            for name, expression in {
                "__dom": "document.documentElement.outerHTML",
                "__title": "document.title",
                **(evaluate or {}),
            }.items()
        }
        # Console events raised during load may still be in the pipe: a round-trip flushes them.
        browser.evaluate("0", session)
        dom = str(values.pop("__dom"))
        title = str(values.pop("__title"))
        return PageResult(dom=dom, title=title, console=list(browser.console), values=values)


def screenshot(
    path: Path | str, png_path: Path, *, width: int = 1200, height: int = 1800, timeout_s: float = 60.0
) -> Path:
    """Render ``path`` to a PNG of the given window size with Chromium's own --screenshot."""
    exe = chromium_path()
    if exe is None:
        raise BrowserError(CHROMIUM_MISSING)
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="storyline-chromium-") as profile:
        cmd = [
            exe,
            *BASE_FLAGS,
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            f"--screenshot={png_path}",
            f"--window-size={width},{height}",
            _address(path),
        ]
        done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    if done.returncode != 0 or not png_path.is_file():
        raise BrowserError(
            f"screenshot failed (exit {done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}"
        )
    return png_path


def _address(path: Path | str) -> str:
    """A local file as a file:// URL; an http(s) URL (a page served by a test server) as given."""
    if isinstance(path, str) and path.startswith(("http://", "https://")):
        return path
    return Path(path).resolve().as_uri()


class Chromium:
    """One headless Chromium process with a DevTools pipe; closed on exit."""

    def __init__(self, *, timeout_s: float, window_size: tuple[int, int]) -> None:
        self.timeout_s = timeout_s
        self.window_size = window_size
        self.console: list[ConsoleMessage] = []
        self._events: list[dict[str, Any]] = []
        self._next_id = 0
        self._buffer = b""

    def __enter__(self) -> Chromium:
        exe = chromium_path()
        if exe is None:
            raise BrowserError(CHROMIUM_MISSING)
        self._profile = tempfile.TemporaryDirectory(prefix="storyline-chromium-")
        # Chromium reads commands on fd 3 and writes replies on fd 4. The child ends
        # are first copied to fds >= 10 so that placing them on 3 and 4 cannot
        # overwrite one another; the copies are close-on-exec, 3 and 4 are not.
        child_r, self._to_child = os.pipe()
        self._from_child, child_w = os.pipe()
        high_r = fcntl.fcntl(child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        high_w = fcntl.fcntl(child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (child_r, child_w):
            os.close(fd)

        def wire_fds() -> None:  # runs in the child between fork and exec
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        width, height = self.window_size
        cmd = [
            exe,
            *BASE_FLAGS,
            f"--user-data-dir={self._profile.name}",
            "--remote-debugging-pipe",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        try:
            # close_fds=False keeps 3 and 4 open in the child; every other fd Python
            # made is close-on-exec (PEP 446), so nothing else leaks into Chromium.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=False,
                preexec_fn=wire_fds,
            )
        finally:
            os.close(high_r)
            os.close(high_w)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._proc.poll() is None:
                try:
                    self._send("Browser.close", {}, None)
                    self._proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired, BrowserError):
                    self._proc.kill()
                    self._proc.wait(timeout=5)
        finally:
            for fd in (self._to_child, self._from_child):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._profile.cleanup()

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> Any:
        msg_id = self._send(method, params or {}, session)
        deadline = time.monotonic() + self.timeout_s
        while True:
            msg = self._read(deadline, waiting_for=method)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method} failed: {msg['error']}")
                return msg.get("result", {})
            self._handle_event(msg)

    def evaluate(self, expression: str, session: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            session=session,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluating {expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_event(self, method: str, session: str) -> dict[str, Any]:
        for i, event in enumerate(self._events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self._events.pop(i)
        deadline = time.monotonic() + self.timeout_s
        while True:
            msg = self._read(deadline, waiting_for=method)
            if "id" in msg:
                continue
            self._handle_event(msg)
            if msg.get("method") == method and msg.get("sessionId") == session:
                self._events.remove(msg)
                return msg

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            written = os.write(self._to_child, data)
            data = data[written:]
        return self._next_id

    def _read(self, deadline: float, *, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"chromium did not answer {waiting_for} within {self.timeout_s} s")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium closed the DevTools pipe (exit {self._proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _handle_event(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        params = msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(_remote_text(arg) for arg in params.get("args", []))
            level = {"assert": "error", "warning": "warning"}.get(
                params.get("type", ""), params.get("type", "")
            )
            self.console.append(ConsoleMessage(level, text, "console"))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.console.append(ConsoleMessage("error", text, "exception"))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append(
                ConsoleMessage(entry.get("level", ""), entry.get("text", ""), entry.get("source", ""))
            )
        elif method:
            self._events.append(msg)


def _remote_text(arg: dict[str, Any]) -> str:
    if "value" in arg:
        return str(arg["value"])
    return str(arg.get("description", arg.get("type", "")))
