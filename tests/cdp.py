"""A minimal Chrome DevTools Protocol client for driving Debian's headless Chromium.

Tests use it to open a report and record what the page did: dialogs, network requests,
console messages and the result of a script evaluated in the page.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import websocket

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageLog:
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    evaluated: Any = None


def open_page(url: str, expression: str, timeout: float = 30.0) -> PageLog:
    """Load url in a fresh headless Chromium, then evaluate expression in the page."""
    profile = tempfile.mkdtemp(prefix="perfreport-chromium-")
    proc = subprocess.Popen(
        [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ws_url = _devtools_url(proc, timeout)
        return _drive(ws_url, url, expression, timeout)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_url(proc: subprocess.Popen[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            return match.group(1)
        if not line and proc.poll() is not None:
            break
    raise RuntimeError("Chromium did not start its DevTools endpoint")


class _Session:
    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.ws.recv()))


def _drive(ws_url: str, url: str, expression: str, timeout: float) -> PageLog:
    ws = websocket.create_connection(ws_url, timeout=timeout)
    try:
        s = _Session(ws)
        target = s.call("Target.createTarget", url="about:blank")["targetId"]
        session = s.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            s.call(f"{domain}.enable", session)
        s.call("Page.navigate", session, url=url)
        s.wait_for("Page.loadEventFired", timeout)
        time.sleep(0.5)  # let any deferred script or image error handler run
        result = s.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        log = PageLog(evaluated=result.get("result", {}).get("value"))
        for e in s.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Page.javascriptDialogOpening":
                log.dialogs.append(params.get("message", ""))
            elif method == "Network.requestWillBeSent":
                log.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled":
                log.console.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
        return log
    finally:
        ws.close()
