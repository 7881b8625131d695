"""Renders the HTML part of a real mail in headless Chromium and checks what a reader gets.

`email-otp dev` (outbox transport, its own private redis-server, loopback ports) mails a code;
the HTML part of the .eml is opened from a file:// URL over the Chrome DevTools protocol at 375
and 1280 CSS px wide. Checks: no horizontal overflow, the code visible, <html lang>, a <title>,
the code spelled out digit by digit for screen readers, a color-scheme meta, nothing remote
loaded (every http(s)/ws(s) request is refused and counted). Screenshots go to --out.
Prints one line per check and "N passed, M failed"; exits 1 when anything failed.
Loopback only; bounded by --timeout seconds overall.
"""

import argparse
import base64
import email
import email.policy
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket  # websocket-client

WIDTHS = (375, 1280)
ADDRESS = "you@example.com"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--disable-extensions", "--mute-audio", "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0", "--host-resolver-rules=MAP * ~NOTFOUND",
]
PROBE = """(() => {
  const code = %s, spaced = code.split('').join(' ');
  const norm = s => (s || '').replace(/\\s+/g, ' ');
  const meta = [...document.querySelectorAll('meta[name]')]
    .find(m => m.name.toLowerCase() === 'color-scheme');
  const labels = [...document.querySelectorAll('[aria-label]')].map(e => e.getAttribute('aria-label'));
  const texts = [...document.querySelectorAll('body *')].map(e => e.textContent);
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    lang: document.documentElement.getAttribute('lang') || '',
    title: document.title.trim(),
    colorScheme: meta ? meta.content : null,
    codeVisible: document.body.innerText.includes(code),
    spelledOut: labels.concat(texts).some(t => norm(t).includes(spaced)),
  };
})()"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, timeout, f):
    deadline = time.monotonic() + timeout
    while True:
        value = f()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def http(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"content-type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except OSError:
        return None, ""


def real_mail(binary, tmp):
    """Starts `email-otp dev`, asks for a code; returns (process, html, code)."""
    http_port, admin_port, redis_port = free_port(), free_port(), free_port()
    outbox = tmp / "outbox"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OTP_HTTP__LISTEN": f"127.0.0.1:{http_port}",
        "OTP_ADMIN__LISTEN": f"127.0.0.1:{admin_port}",
        # Nothing answers there, so `dev` starts a private redis-server of its own.
        "OTP_REDIS__URL": f"redis://127.0.0.1:{redis_port}",
        "OTP_MAIL__OUTBOX_DIR": str(outbox),
        "OTP_MAIL__TEMPLATE_DIR": str(Path(__file__).resolve().parents[2] / "mailer"),
    }
    log = open(tmp / "service.log", "wb")
    proc = subprocess.Popen([binary, "dev"], env=env, stdout=log, stderr=log)
    wait_for("the service's /readyz", 30,
             lambda: http(f"http://127.0.0.1:{admin_port}/readyz")[0] == 200)
    status, body = http(f"http://127.0.0.1:{http_port}/otp/generate", {"email": ADDRESS})
    assert status == 202, (status, body)
    eml = wait_for("the .eml in the outbox", 15, lambda: sorted(outbox.glob("*.eml")))[0]
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    html = msg.get_body(("html",)).get_content()
    code = re.search(r"\b\d{6}\b", msg.get_body(("plain",)).get_content()).group()
    return proc, html, code


class DevTools:
    """One page's DevTools connection; refuses every remote request and counts them."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=20, suppress_origin=True)
        self.next_id = 0
        self.blocked = []
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == my_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.handle(m)

    def handle(self, m):
        if m.get("method") == "Fetch.requestPaused":
            self.blocked.append(m["params"]["request"]["url"])
            self.next_id += 1
            self.ws.send(json.dumps({"id": self.next_id, "method": "Fetch.failRequest", "params": {
                "requestId": m["params"]["requestId"], "errorReason": "BlockedByClient"}}))
        elif "method" in m:
            self.events.append(m["method"])

    def wait_event(self, name, timeout):
        deadline = time.monotonic() + timeout
        while name not in self.events:
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {name}")
            self.handle(json.loads(self.ws.recv()))
        self.events.remove(name)


def start_chromium(tmp):
    profile = tmp / "profile"
    profile.mkdir()
    log = open(tmp / "chromium.log", "wb")
    proc = subprocess.Popen(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                             "about:blank"], stdout=log, stderr=log, start_new_session=True)
    port_file = profile / "DevToolsActivePort"
    port = wait_for("Chromium's DevToolsActivePort", 30,
                    lambda: port_file.exists() and port_file.read_text().split("\n")[0])
    pages = wait_for("Chromium's page", 10, lambda: [
        t for t in json.loads(http(f"http://127.0.0.1:{port}/json/list")[1] or "[]")
        if t["type"] == "page"])
    return proc, pages[0]["webSocketDebuggerUrl"]


def time_is_up(*_):
    raise SystemExit("time is up: the render check took longer than --timeout")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary", help="the email-otp binary")
    ap.add_argument("--out", required=True, help="directory for mail-375.png and mail-1280.png")
    ap.add_argument("--timeout", type=int, default=120)
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, time_is_up)
    signal.alarm(args.timeout)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []

    def check(ok, what):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)

    with tempfile.TemporaryDirectory(prefix="email-otp-render-") as t:
        tmp = Path(t)
        service, browser = None, None
        try:
            service, html, code = real_mail(args.binary, tmp)
            page = tmp / "mail.html"
            page.write_text(html, encoding="utf-8")
            browser, ws_url = start_chromium(tmp)
            dt = DevTools(ws_url)
            dt.call("Page.enable")
            dt.call("Fetch.enable", patterns=[{"urlPattern": p} for p in ("http*", "ws*")])
            for width in WIDTHS:
                # Not `mobile`: mobile emulation widens the layout viewport to the content, so
                # innerWidth would grow with an overflow instead of showing it.
                dt.call("Emulation.setDeviceMetricsOverride", width=width, height=800,
                        deviceScaleFactor=1, mobile=False)
                dt.call("Page.navigate", url=page.as_uri())
                dt.wait_event("Page.loadEventFired", 20)
                p = dt.call("Runtime.evaluate", expression=PROBE % json.dumps(code),
                            returnByValue=True)["result"]["value"]
                check(p["innerWidth"] == width, f"{width}px: the viewport is {p['innerWidth']}px")
                check(p["scrollWidth"] <= p["innerWidth"],
                      f"{width}px: no horizontal overflow (scrollWidth {p['scrollWidth']})")
                check(p["codeVisible"], f"{width}px: the code {code} is on the page")
                if width == WIDTHS[0]:
                    check(bool(p["lang"]), f"<html lang> is set ({p['lang']!r})")
                    check(bool(p["title"]), f"a <title> ({p['title']!r})")
                    check(p["spelledOut"], "the code spelled out digit by digit for screen readers"
                          f" ({' '.join(code)!r} as text or aria-label)")
                    check(bool(p["colorScheme"]),
                          f"a color-scheme meta ({p['colorScheme']!r})")
                height = dt.call("Page.getLayoutMetrics")["cssContentSize"]["height"]
                shot = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                               clip={"x": 0, "y": 0, "width": width,
                                     "height": max(height, 1), "scale": 1})
                (out / f"mail-{width}.png").write_bytes(base64.b64decode(shot["data"]))
            check(not dt.blocked, f"nothing remote requested ({dt.blocked})")
        finally:
            if browser:
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait()
            if service:
                service.terminate()
                service.wait(timeout=15)
    failed = results.count(False)
    print(f"mail render: {len(results) - failed} passed, {failed} failed")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
