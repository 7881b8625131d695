#!/usr/bin/env python3
"""Alert hygiene for charts/email-otp/files/alerts.yaml: alerts_check.py

- every rule's expression parses (promql-parser; promtool checks it as well)
- every alert has a severity label (critical or warning) and summary, description
  and runbook_url annotations
- every runbook_url points at docs/operations.md#<anchor>, and the doc has a
  heading whose GitHub anchor is <anchor> (the heading text is the alert name)
- every alert has a promtool unit test in scripts/deploy/alerts_test.yaml that
  expects it to fire and one that expects it to stay quiet
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import promql  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "charts" / "email-otp" / "files" / "alerts.yaml"
TESTS = Path(__file__).resolve().parent / "alerts_test.yaml"
DOC = ROOT / "docs" / "operations.md"
RUNBOOK_PREFIX = "https://github.com/email-otp/email-otp/blob/main/docs/operations.md#"


def github_anchor(heading: str) -> str:
    """GitHub's heading anchor: lowercase, drop punctuation, spaces to dashes."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def doc_anchors() -> set[str]:
    anchors, in_code = set(), False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not in_code:
            anchors.add(github_anchor(m.group(1)))
    return anchors


def main() -> int:
    errors = []
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"] if "alert" in r]
    anchors = doc_anchors() if DOC.is_file() else set()
    if not DOC.is_file():
        errors.append(f"{DOC.relative_to(ROOT)} is missing")
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    fires, quiet = set(), set()
    for t in tests:
        for case in t.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = [r["alert"] for r in rules]
    if len(set(names)) != len(names):
        errors.append(f"duplicate alert names: {names}")
    for where, expr in promql.alert_exprs(ALERTS):
        problem = promql.parse_error(expr)
        if problem:
            errors.append(f"{where}: PromQL does not parse: {problem}")
    for r in rules:
        name = r["alert"]
        if r.get("labels", {}).get("severity") not in ("critical", "warning"):
            errors.append(f"{name}: severity label must be critical or warning")
        ann = r.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                errors.append(f"{name}: no {key} annotation")
        url = ann.get("runbook_url", "")
        if not url.startswith(RUNBOOK_PREFIX):
            errors.append(f"{name}: runbook_url {url!r} does not start with {RUNBOOK_PREFIX}")
        else:
            anchor = url[len(RUNBOOK_PREFIX):]
            if anchor != name.lower():
                errors.append(f"{name}: runbook anchor {anchor!r} is not {name.lower()!r}")
            if anchor not in anchors:
                errors.append(f"{name}: docs/operations.md has no heading with anchor #{anchor} (add '### {name}')")
        if name not in fires:
            errors.append(f"{name}: no test in {TESTS.name} expects it to fire")
        if name not in quiet:
            errors.append(f"{name}: no test in {TESTS.name} expects it to stay quiet")
    if errors:
        print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
        return 1
    print(f"{len(rules)} alerts with runbooks and tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
