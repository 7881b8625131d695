"""Smoke test for the Python client (openapi-python-client): generate -> code from the outbox ->
verify -> 200; a wrong code -> typed 400 `otp_incorrect`; a second generate -> 429 with
`Retry-After` read by the caller.

Usage (the generated package `email_otp_client` on PYTHONPATH):
    python python_smoke.py BASE_URL OUTBOX_DIR EMAIL
"""

import re
import sys
import time
from pathlib import Path

from email_otp_client import Client
from email_otp_client.api.otp import generate_otp, verify_otp
from email_otp_client.models import (
    Accepted,
    ErrorBody,
    ErrorCode,
    GenerateRequest,
    Verified,
    VerifyRequest,
)

CODE_LINE = re.compile(r"^[ \t]+([0-9]{6})[ \t]*\r?$", re.M)


def code_from_outbox(outbox: Path, email: str) -> str | None:
    """The code in the newest .eml addressed to `email` (alone on an indented line of the text part)."""
    best: tuple[float, str] | None = None
    for path in outbox.glob("*.eml"):
        text = path.read_text("utf-8", errors="replace")
        if not any(line.startswith("To:") and email in line for line in text.splitlines()):
            continue
        m = CODE_LINE.search(text)
        mtime = path.stat().st_mtime
        if m and (best is None or mtime > best[0]):
            best = (mtime, m.group(1))
    return best[1] if best else None


def wait_for_code(outbox: Path, email: str) -> str:
    deadline = time.monotonic() + 20
    while (code := code_from_outbox(outbox, email)) is None:
        if time.monotonic() > deadline:
            sys.exit(f"no mail for {email} in {outbox}")
        time.sleep(0.1)
    return code


def main() -> None:
    base_url, outbox, email = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    client = Client(base_url=base_url, raise_on_unexpected_status=True)

    # generate -> 202
    r = generate_otp.sync_detailed(client=client, body=GenerateRequest(email=email))
    assert r.status_code == 202 and isinstance(r.parsed, Accepted), r
    assert r.parsed.status == "accepted", r.parsed
    assert r.parsed.expires_in > 0 and r.parsed.retry_after > 0, r.parsed

    code = wait_for_code(outbox, email)

    # a wrong code -> typed 400 with code otp_incorrect
    wrong = "111111" if code == "000000" else "000000"
    r = verify_otp.sync_detailed(client=client, body=VerifyRequest(email=email, otp=wrong))
    assert r.status_code == 400 and isinstance(r.parsed, ErrorBody), r
    assert r.parsed.code is ErrorCode.OTP_INCORRECT, r.parsed

    # the right code -> 200 verified
    r = verify_otp.sync_detailed(client=client, body=VerifyRequest(email=email, otp=code))
    assert r.status_code == 200 and isinstance(r.parsed, Verified), r
    assert r.parsed.verified is True and r.parsed.message == "OTP is correct", r.parsed

    # a second generate within the cooldown -> 429 with Retry-After
    r = generate_otp.sync_detailed(client=client, body=GenerateRequest(email=email))
    assert r.status_code == 429 and isinstance(r.parsed, ErrorBody), r
    assert r.parsed.code is ErrorCode.RATE_LIMITED, r.parsed
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= 60, retry_after
    print(f"python client: verified, otp_incorrect, 429 Retry-After={retry_after}")


if __name__ == "__main__":
    main()
