#!/usr/bin/env python3
"""The shipped alerts against a real Prometheus: alerts_live.py BINARY [--verbose]

Starts, on loopback ports picked free and in one temporary directory, a
redis-server, `email-otp serve` (outbox mail, so no SMTP) and a prometheus that
scrapes the service's admin /metrics every second under job="email-otp" (the
selector of charts/email-otp/files/alerts.yaml; namespace="otp" as the
Prometheus Operator would add it) and evaluates a copy of the shipped rules
every second, with every `for:` cut to 2s. Then, reading /api/v1/alerts:

  a. healthy, with traffic: no alert pending or firing;
  b. redis-server killed, verify and generate traffic answered 503: exactly
     EmailOtpRedisUnreachable fires; not EmailOtpNotReady, and not the error
     ratio alerts, although their ratios are above threshold (checked by query);
  c. redis-server started again: EmailOtpRedisUnreachable resolves, nothing fires;
  d. email-otp killed: exactly EmailOtpTargetDown fires;
  e. its target removed from service discovery: exactly EmailOtpTargetAbsent fires.

Every wait is bounded; each phase prints how long it took. Every process is
stopped at the end (or on failure), and the directory removed. Exits 1 on failure.
Needs redis-server and prometheus on PATH (scripts/check-alerts-live installs them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "email-otp" / "files" / "alerts.yaml"
FOR = "2s"
# A phase waits at most this long for the state it expects.
WAIT = 30.0
# How long a state that must not change (nothing else fires) is watched.
HOLD = 4.0
VERBOSE = "--verbose" in sys.argv


class Failure(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: dict | None = None, timeout: float = 2.0) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


class Live:
    def __init__(self, binary: Path, work: Path):
        self.binary = binary
        self.work = work
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis_port = free_port()
        self.http_port = free_port()
        self.admin_port = free_port()
        self.prom_port = free_port()
        self.prom = f"http://127.0.0.1:{self.prom_port}"
        self.api = f"http://127.0.0.1:{self.http_port}"
        self.targets = work / "targets.json"
        self.n = 0

    # --- processes -------------------------------------------------------------------------
    def start(self, name: str, argv: list[str], env: dict | None = None) -> None:
        log = open(self.work / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=self.work, start_new_session=True,
        )
        log.close()

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        p.send_signal(sig)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name, signal.SIGKILL if name == "redis" else signal.SIGTERM)

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.work / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def start_redis(self) -> None:
        self.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(self.work)])
        self.until("redis-server answers", lambda: self.redis_ping(), 10)

    def redis_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start_service(self) -> None:
        self.start("email-otp", [str(self.binary), "serve"], {
            "OTP_REDIS__URL": f"redis://127.0.0.1:{self.redis_port}",
            "OTP_OTP__HMAC_KEY": os.urandom(32).hex(),
            "OTP_MAIL__TRANSPORT": "outbox",
            "OTP_MAIL__OUTBOX_DIR": str(self.work / "outbox"),
            "OTP_MAIL__TEMPLATE_DIR": str(ROOT / "mailer"),
            "OTP_HTTP__LISTEN": f"127.0.0.1:{self.http_port}",
            "OTP_ADMIN__LISTEN": f"127.0.0.1:{self.admin_port}",
        })
        self.until("email-otp is ready",
                   lambda: http(f"http://127.0.0.1:{self.admin_port}/readyz")[0] == 200, 15)

    def write_targets(self, present: bool) -> None:
        groups = [{"targets": [f"127.0.0.1:{self.admin_port}"], "labels": {"namespace": "otp"}}] if present else []
        tmp = self.targets.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.targets)

    def start_prometheus(self) -> None:
        rules = re.sub(r"(?m)^(\s+)for: \S+$", rf"\g<1>for: {FOR}", RULES.read_text())
        if rules.count(f"for: {FOR}") != RULES.read_text().count("for: "):
            raise Failure("could not shorten every `for:` of the rules")
        (self.work / "alerts.yaml").write_text(rules)
        self.write_targets(True)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(self.work / "alerts.yaml")],
            "scrape_configs": [{
                "job_name": "email-otp",
                "file_sd_configs": [{"files": [str(self.targets)], "refresh_interval": "1s"}],
            }],
        }
        (self.work / "prometheus.yml").write_text(json.dumps(config, indent=2))
        self.start("prometheus", [
            "prometheus", f"--config.file={self.work / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.prom_port}",
            "--log.level=warn",
        ])
        self.until("prometheus is ready", lambda: http(f"{self.prom}/-/ready")[0] == 200, 20)

    # --- queries ---------------------------------------------------------------------------
    def alerts(self) -> dict[str, str]:
        """alertname -> state (pending or firing) of every active email-otp alert."""
        code, body = http(f"{self.prom}/api/v1/alerts")
        if code != 200:
            raise Failure(f"/api/v1/alerts answered {code}: {body[:200]}")
        out = {}
        for a in json.loads(body)["data"]["alerts"]:
            name = a["labels"]["alertname"]
            if out.get(name) != "firing":
                out[name] = a["state"]
        return out

    def firing(self) -> set[str]:
        return {n for n, s in self.alerts().items() if s == "firing"}

    def query(self, expr: str) -> list[dict]:
        code, body = http(f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if code != 200:
            raise Failure(f"query {expr!r} answered {code}: {body[:200]}")
        return json.loads(body)["data"]["result"]

    def value(self, expr: str) -> float | None:
        r = self.query(expr)
        return float(r[0]["value"][1]) if r else None

    def until(self, what: str, cond, timeout: float = WAIT) -> float:
        """Polls `cond` until true; returns the seconds it took."""
        start = time.monotonic()
        while True:
            try:
                if cond():
                    return time.monotonic() - start
            except Failure:
                raise
            except Exception as e:  # a process still starting: connection refused and the like
                if VERBOSE:
                    print(f"   ({what}: {e})")
            if time.monotonic() - start > timeout:
                raise Failure(f"timed out after {timeout:.0f}s waiting for: {what}; alerts: {self.safe_alerts()}")
            time.sleep(0.25)

    def safe_alerts(self) -> str:
        try:
            return str(self.alerts())
        except Exception as e:
            return f"(unreadable: {e})"

    def hold(self, what: str, expected: set[str], seconds: float = HOLD) -> None:
        """Checks for `seconds` that exactly `expected` fires and nothing else is even pending."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            active = self.alerts()
            if set(active) != expected or any(active[n] != "firing" for n in expected):
                raise Failure(f"{what}: expected exactly {sorted(expected) or 'no alert'} firing, got {active}")
            time.sleep(0.25)

    # --- traffic -----------------------------------------------------------------------------
    def traffic(self, rounds: int = 3) -> list[int]:
        codes = []
        for _ in range(rounds):
            self.n += 1
            email = f"live{self.n}@example.com"
            codes.append(http(f"{self.api}/otp/generate", {"email": email})[0])
            codes.append(http(f"{self.api}/otp/verify", {"email": email, "otp": "000000"})[0])
        return codes


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    binary = Path(args[0]).resolve()
    for tool in ("redis-server", "prometheus"):
        if not shutil.which(tool):
            print(f"error: {tool} is not on PATH", file=sys.stderr)
            return 2
    # `timeout` and CI stop with SIGTERM: leave through `finally`, which stops the processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = Path(tempfile.mkdtemp(prefix="email-otp-alerts-live-"))
    live = Live(binary, work)
    t0 = time.monotonic()
    ok = False
    try:
        live.start_redis()
        live.start_service()
        live.start_prometheus()
        took = live.until("the target is scraped", lambda: live.value('up{job="email-otp"}') == 1)
        print(f"ok  started redis-server, email-otp serve, prometheus; first scrape after {took:.1f}s")

        # (a) healthy
        start = time.monotonic()
        codes = live.traffic()
        if 202 not in codes:
            raise Failure(f"healthy traffic got no 202: {codes}")
        live.until("a mail is sent", lambda: (live.value('sum(email_otp_jobs_total{outcome="sent"})') or 0) > 0)
        live.until("every alert of the start-up is gone", lambda: not live.alerts(), 10)
        live.hold("healthy", set(), 3 * 2.0)
        print(f"ok  a. healthy with traffic: no alert pending or firing for 6s ({time.monotonic() - start:.1f}s)")

        # (b) Redis outage
        start = time.monotonic()
        live.stop("redis", signal.SIGKILL)

        def redis_alert_with_traffic() -> bool:
            live.traffic(1)  # 503s all along, for the error ratio alerts to see
            return "EmailOtpRedisUnreachable" in live.firing()

        fired = live.until("EmailOtpRedisUnreachable fires", redis_alert_with_traffic)
        codes = live.traffic()
        if set(codes) != {503}:
            raise Failure(f"traffic during the Redis outage answered {codes}, not only 503")
        verify = live.value('sum(rate(email_otp_verify_total{outcome="unavailable"}[5m])) / sum(rate(email_otp_verify_total[5m]))')
        errors = live.value('sum(rate(email_otp_http_requests_total{status_class="5xx"}[5m])) / sum(rate(email_otp_http_requests_total[5m]))')
        if not (verify and verify > 0.05 and errors and errors > 0.05):
            raise Failure(f"the outage's error ratios should be above 5 %: verify {verify}, 5xx {errors}")
        live.hold("Redis outage", {"EmailOtpRedisUnreachable"})
        ready = live.value('min(email_otp_ready{job="email-otp"})')
        if ready != 1:
            raise Failure(f"email_otp_ready is {ready} during the Redis outage; readiness must not follow Redis")
        print(f"ok  b. redis-server killed: EmailOtpRedisUnreachable firing after {fired:.1f}s and alone for {HOLD:.0f}s "
              f"(ready stays 1; verify 503 ratio {verify:.0%} and 5xx ratio {errors:.0%} above 5 %, their alerts quiet) "
              f"({time.monotonic() - start:.1f}s)")

        # (c) Redis back
        start = time.monotonic()
        live.start_redis()
        resolved = live.until("EmailOtpRedisUnreachable resolves", lambda: not live.alerts())
        codes = live.traffic()
        if 202 not in codes:
            raise Failure(f"traffic after Redis returned got no 202: {codes}")
        live.hold("Redis back", set())
        print(f"ok  c. redis-server back: every alert resolved after {resolved:.1f}s, none for {HOLD:.0f}s "
              f"({time.monotonic() - start:.1f}s)")

        # (d) the service dies
        start = time.monotonic()
        live.stop("email-otp", signal.SIGKILL)
        down = live.until("EmailOtpTargetDown fires", lambda: "EmailOtpTargetDown" in live.firing())
        live.hold("service stopped", {"EmailOtpTargetDown"})
        print(f"ok  d. email-otp killed: EmailOtpTargetDown firing after {down:.1f}s and alone for {HOLD:.0f}s "
              f"({time.monotonic() - start:.1f}s)")

        # (e) no target at all
        start = time.monotonic()
        live.write_targets(False)
        absent = live.until("EmailOtpTargetAbsent fires", lambda: live.firing() == {"EmailOtpTargetAbsent"})
        live.hold("target removed", {"EmailOtpTargetAbsent"})
        print(f"ok  e. target removed: EmailOtpTargetAbsent firing after {absent:.1f}s and alone for {HOLD:.0f}s "
              f"({time.monotonic() - start:.1f}s)")
        ok = True
    except Failure as e:
        print(f"FAIL {e}", file=sys.stderr)
        for name in ("email-otp", "prometheus", "redis"):
            tail = live.log_tail(name)
            if tail:
                print(f"--- {name} log (last lines) ---\n{tail}", file=sys.stderr)
    finally:
        live.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{5 if ok else 0} passed, {0 if ok else 1} failed ({time.monotonic() - t0:.1f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
