#!/usr/bin/env python3
"""Fail if a dashboard panel or an alert uses a metric the service does not export.

  check_metric_names.py METRICS_TEXT_FILE [--list]

METRICS_TEXT_FILE is a Prometheus text exposition (e.g. `curl -s host:9090/metrics`,
or the API's and the worker's scrapes concatenated). Every metric name selected by
an expression in dashboards/*.json and charts/email-otp/files/alerts.yaml must be
exported: as a sample, or declared by `# TYPE` (a labelled counter with no sample
yet). A name ending in _bucket, _count or _sum is accepted through its base name
only when the base is exported as a histogram (_count and _sum: or a summary).
--list prints every referenced name and where it is used.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import promql  # noqa: E402

SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{.*\})?\s+\S+")
TYPE = re.compile(r"^#\s*TYPE\s+([A-Za-z_:][A-Za-z0-9_:]*)\s+(\w+)")
SUFFIXES = {"_bucket": {"histogram"}, "_count": {"histogram", "summary"}, "_sum": {"histogram", "summary"}}


def exported(text: str) -> tuple[set[str], dict[str, str]]:
    samples, types = set(), {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        m = TYPE.match(line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m:
            samples.add(m.group(1))
    return samples, types


def is_exported(name: str, samples: set[str], types: dict[str, str]) -> bool:
    for suffix, kinds in SUFFIXES.items():
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if types.get(base) in kinds:
                return True
    if types.get(name) in ("histogram", "summary"):
        return False  # the bare name of a histogram is never a series
    return name in samples or name in types


def referenced() -> dict[str, list[str]]:
    uses: dict[str, list[str]] = defaultdict(list)
    exprs = promql.alert_exprs()
    for d in sorted(promql.DASHBOARD_DIR.glob("*.json")):
        exprs += promql.dashboard_exprs(d)
    for where, expr in exprs:
        for name in promql.metric_names(promql.grafana_to_promql(expr)):
            uses[name].append(where)
    return uses


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    samples, types = exported(Path(args[0]).read_text())
    if not samples and not types:
        print(f"error: no metrics in {args[0]}", file=sys.stderr)
        return 1
    uses = referenced()
    if "--list" in argv:
        for name in sorted(uses):
            print(f"{name}: {len(uses[name])} use(s)")
    missing = {n: w for n, w in uses.items() if not is_exported(n, samples, types)}
    if missing:
        for name in sorted(missing):
            print(f"error: {name} is not exported (used by {'; '.join(sorted(set(missing[name])))})", file=sys.stderr)
        return 1
    print(f"{len(uses)} metric names used by dashboards and alerts, all exported")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
