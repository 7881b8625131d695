#!/usr/bin/env python3
"""Does the binary accept the configuration the chart gives it?

  chart_env_check.py EMAIL_OTP_BINARY

For every value set in scripts/deploy/values/ and every container of every
Deployment the chart renders, runs `EMAIL_OTP_BINARY check-config` with exactly
that container's environment (secret files replaced by temporary files, the
template dir by the repository's mailer/). The binary refuses unknown keys and
bad values, so this catches a chart that sets a variable the code does not know.
Needs a built binary: `scripts/check-deploy BINARY` runs it (with its venv's
python; scripts/test passes the debug build).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chart  # noqa: E402

FAKE_FILES = {
    "hmac-key": "0123456789abcdef0123456789abcdef0123456789abcdef\n",
    "smtp-password": "not-a-password\n",
}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    binary = str(Path(argv[0]).resolve())
    chart.helm.disable_logging()
    failures, runs = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(chart.VALUES_DIR.glob("*.yaml")):
            docs = chart.manifests(chart.render(chart.load_values(path)))
            for deploy in chart.by_kind(docs, "Deployment"):
                for c in deploy["spec"]["template"]["spec"]["containers"]:
                    if c["name"] not in chart.APP_CONTAINERS:  # extraContainers are not ours
                        continue
                    env = {}
                    for e in c["env"]:
                        value = e.get("value", "")
                        if value.startswith("/etc/email-otp/"):
                            name = value.rsplit("/", 1)[1]
                            fake = Path(tmp) / name
                            if name.endswith(".pem"):
                                # The binary checks that a CA file holds a certificate.
                                subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                                "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=test-ca",
                                                "-days", "1", "-keyout", str(Path(tmp) / "ca.key"),
                                                "-out", str(fake)], check=True, capture_output=True)
                            else:
                                fake.write_text(FAKE_FILES.get(name, "redis://:p%40ss@127.0.0.1:6379\n"))
                            value = str(fake)
                        env[e["name"]] = value
                    env["OTP_MAIL__TEMPLATE_DIR"] = str(chart.ROOT / "mailer")
                    env["PATH"] = "/usr/bin:/bin"
                    proc = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True)
                    runs += 1
                    if proc.returncode != 0:
                        failures.append(f"{path.stem}: {deploy['metadata']['name']}/{c['name']}: "
                                        f"check-config exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    if failures:
        print("\n".join(f"error: {f}" for f in failures), file=sys.stderr)
        return 1
    print(f"check-config accepted the environment of {runs} containers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
