#!/usr/bin/env python3
"""Fail if a dashboard panel or an alert uses a metric the service does not export.

  check_metric_names.py METRICS_TEXT_FILE [--list]

METRICS_TEXT_FILE is a Prometheus text exposition (e.g. `curl -s host:9090/metrics`,
or the API's and the worker's scrapes concatenated). Every metric name selected by
an expression in dashboards/*.json and charts/email-otp/files/alerts.yaml must be
exported: as a sample, or declared by `# TYPE` (a labelled counter with no sample
yet). A name ending in _bucket, _count or _sum is accepted through its base name
only when the base is exported as a histogram (_count and _sum: or a summary).
Label matchers are checked too: in `outcome="rate_limited"` or `state=~"pending|dead"`,
each value must occur in the exposition for that metric, unless the label never occurs
there (target labels such as namespace or instance, added by Prometheus) or it is one
of DYNAMIC_LABELS (route, method, status_class: series created by the first request).
Series that Prometheus makes itself (PROMETHEUS_SERIES: `up` of every target, `ALERTS`
of every alert) are accepted without an exposition.
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


# Label values that appear only after matching traffic (the HTTP series are created on
# first request); the service pre-creates every other labelled series at 0.
DYNAMIC_LABELS = {"route", "method", "status_class"}
# Written by Prometheus, not scraped: per-target `up` and the alert state series.
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def label_values(text: str) -> dict[tuple[str, str], set[str]]:
    """(metric, label) -> values seen in samples; histogram series count for their base name too."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)\{(.*)\}\s+\S+", line.strip())
        if not m:
            continue
        names = {m.group(1)} | {m.group(1)[: -len(s)] for s in SUFFIXES if m.group(1).endswith(s)}
        for label, value in LABEL.findall(m.group(2)):
            for n in names:
                seen[(n, label)].add(value)
    return seen


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
    if name in PROMETHEUS_SERIES:
        return True
    for suffix, kinds in SUFFIXES.items():
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if types.get(base) in kinds:
                return True
    if types.get(name) in ("histogram", "summary"):
        return False  # the bare name of a histogram is never a series
    return name in samples or name in types


def all_exprs() -> list[tuple[str, str]]:
    exprs = promql.alert_exprs()
    for d in sorted(promql.DASHBOARD_DIR.glob("*.json")):
        exprs += promql.dashboard_exprs(d)
    return [(where, promql.grafana_to_promql(expr)) for where, expr in exprs]


def referenced() -> dict[str, list[str]]:
    uses: dict[str, list[str]] = defaultdict(list)
    for where, expr in all_exprs():
        for name in promql.metric_names(expr):
            uses[name].append(where)
    return uses


def bad_label_values(text: str) -> list[str]:
    seen = label_values(text)
    labels_of: dict[str, set[str]] = defaultdict(set)
    for metric, label in seen:
        labels_of[metric].add(label)
    errors = []
    for where, expr in all_exprs():
        for metric, label, values in promql.label_matchers(expr):
            if label not in labels_of.get(metric, set()) or label in DYNAMIC_LABELS:
                continue  # a target label (namespace, instance, job), or values that need traffic
            for v in values:
                if v not in seen[(metric, label)]:
                    errors.append(f'{metric}{{{label}="{v}"}} is never exported (used by {where}); '
                                  f"exported values: {', '.join(sorted(seen[(metric, label)]))}")
    return sorted(set(errors))


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    text = Path(args[0]).read_text()
    samples, types = exported(text)
    if not samples and not types:
        print(f"error: no metrics in {args[0]}", file=sys.stderr)
        return 1
    uses = referenced()
    if "--list" in argv:
        for name in sorted(uses):
            print(f"{name}: {len(uses[name])} use(s)")
    missing = {n: w for n, w in uses.items() if not is_exported(n, samples, types)}
    for name in sorted(missing):
        print(f"error: {name} is not exported (used by {'; '.join(sorted(set(missing[name])))})", file=sys.stderr)
    bad_labels = bad_label_values(text)
    for e in bad_labels:
        print(f"error: {e}", file=sys.stderr)
    if missing or bad_labels:
        return 1
    print(f"{len(uses)} metric names used by dashboards and alerts, all exported with the label values used")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
