"""Small PromQL helpers shared by the dashboard and metric-name checks.

No PromQL parser is packaged for Python; promtool does the real parsing (see
dashboard_check.py). This module only needs two things a tokenizer can do:
turn Grafana expressions into plain PromQL, and list the metric names an
expression selects.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "dashboards"
ALERTS = ROOT / "charts" / "email-otp" / "files" / "alerts.yaml"

GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
GRAFANA_VARS = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "atmodifier", "inf", "nan",
}
# Aggregations and functions whose name is followed by "(" are skipped anyway;
# these may be written with the grouping clause first: sum by (x) (...).
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
}


def grafana_to_promql(expr: str, var_value: str = "value") -> str:
    """Replace Grafana's range macros by 5m and template variables by a value."""
    expr = GRAFANA_RANGES.sub("5m", expr)
    return GRAFANA_VARS.sub(var_value, expr)


def grafana_variables(expr: str) -> set[str]:
    expr = GRAFANA_RANGES.sub("", expr)
    return {a or b or c for a, b, c in GRAFANA_VARS.findall(expr)}


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (a tokenizer, not a parser)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    s = re.sub(r"#[^\n]*", " ", s)  # comments
    s = re.sub(r"\{[^{}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range and subquery durations
    # label lists of grouping / matching clauses: by (a, b), on (x), group_left (y) ...
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        word = m.group(0)
        start, end = m.span()
        if start > 0 and (s[start - 1].isdigit() or s[start - 1] == "."):
            continue  # part of a number or duration such as 1e3, 5m
        rest = s[end:].lstrip()
        if rest.startswith("("):
            continue  # function or aggregation call
        if word.lower() in KEYWORDS or word in AGGREGATIONS:
            continue
        names.add(word)
    return names


def dashboard_exprs(path: Path) -> list[tuple[str, str]]:
    """(where, expr) for every target of every panel, rows included."""
    dash = json.loads(path.read_text())
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []) or []:
                if t.get("expr"):
                    out.append((f"{path.name} panel {p.get('id')} {p.get('title')!r} {t.get('refId')}", t["expr"]))
            walk(p.get("panels", []) or [])

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query" and q:
            text = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", text or "")
            if m:
                out.append((f"{path.name} variable {v['name']}", m.group(1)))
    return out


def alert_exprs(path: Path = ALERTS) -> list[tuple[str, str]]:
    doc = yaml.safe_load(path.read_text())
    return [
        (f"{path.name} {r.get('alert') or r.get('record')}", r["expr"])
        for g in doc["groups"]
        for r in g["rules"]
    ]


SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^{}]*)\}")
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"')


def label_matchers(expr: str) -> list[tuple[str, str, list[str]]]:
    """(metric, label, values) for every `label="v"` or `label=~"a|b"` matcher of a named
    selector; regex matchers count only when they are plain alternatives of words."""
    out = []
    for metric, body in SELECTOR.findall(expr):
        for label, op, value in MATCHER.findall(body):
            if op == "=":
                out.append((metric, label, [value]))
            elif op == "=~" and re.fullmatch(r"[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*", value):
                out.append((metric, label, value.split("|")))
    return out
