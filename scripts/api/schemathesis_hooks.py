"""schemathesis hooks for scripts/check-api (loaded through schemathesis.toml)."""

import schemathesis

# The 400 answers that a schema-valid request may get, by operation: the address rules the spec's
# pattern cannot state (messages from src/domain/email.rs) and, on verify, a code that is not the one mailed.
ADDRESS_RULES = {
    ("invalid_request", "email: the domain is not a valid internet domain name"),
    ("invalid_request", "email: the local part (before '@') must be 1 to 64 octets"),
    ("invalid_request", "email: the address is longer than 254 octets"),
}
EXPLAINED_400 = {
    "/otp/generate": ADDRESS_RULES,
    "/otp/verify": ADDRESS_RULES | {("otp_incorrect", "OTP is incorrect")},
}


@schemathesis.check
def schema_valid_400_is_explained(ctx, response, case):
    """A schema-valid request answered 400 must be one of the answers in EXPLAINED_400.

    positive_data_acceptance allows 400 (see schemathesis.toml); this check narrows it back down,
    so that, say, a 6-digit code refused as malformed or a local part the pattern admits but the
    parser refuses still fails the run.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        body = response.json()
        answer = (body["code"], body["message"])
    except Exception as exc:  # noqa: BLE001 - any unreadable body is the failure
        raise AssertionError(f"400 without the JSON error body: {exc}") from None
    allowed = EXPLAINED_400.get(case.path, set())
    assert answer in allowed, (
        f"schema-valid request answered 400 {answer[0]!r}: {answer[1]!r}; "
        f"either the spec admits what the service refuses, or the service is wrong"
    )
    return None
