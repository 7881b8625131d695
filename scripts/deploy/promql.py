"""Small PromQL helpers shared by the alert, dashboard and metric-name checks.

Expressions are parsed with the PyPI package promql-parser (bindings to the
Rust crate of the same name, pinned in scripts/check-deploy): `parse` turns a
syntax error into a message, `metric_names` and `label_matchers` read the
selectors off the syntax tree. promtool still parses everything as well (see
dashboard_check.py and `promtool check rules`): it is the reference.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "dashboards"
ALERTS = ROOT / "charts" / "email-otp" / "files" / "alerts.yaml"

GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
GRAFANA_VARS = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def grafana_to_promql(expr: str, var_value: str = "value") -> str:
    """Replace Grafana's range macros by 5m and template variables by a value."""
    expr = GRAFANA_RANGES.sub("5m", expr)
    return GRAFANA_VARS.sub(var_value, expr)


def grafana_variables(expr: str) -> set[str]:
    expr = GRAFANA_RANGES.sub("", expr)
    return {a or b or c for a, b, c in GRAFANA_VARS.findall(expr)}


def parse(expr: str) -> promql_parser.Expr:
    """The syntax tree of a PromQL expression; ValueError with the parser's message if invalid."""
    return promql_parser.parse(expr)


def parse_error(expr: str) -> str | None:
    """None when `expr` parses, else the parser's message."""
    try:
        parse(expr)
    except ValueError as e:
        return str(e)
    return None


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """Every vector selector of an expression, range selectors and subqueries included."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(parse(expr), visit)
    return found


def _name(sel: promql_parser.VectorSelector) -> str | None:
    """The metric name: `foo{...}` or `{__name__="foo"}`."""
    if sel.name:
        return sel.name
    for m in sel.matchers.matchers:
        if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal:
            return m.value
    return None


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression."""
    return {n for n in map(_name, selectors(expr)) if n}


def label_matchers(expr: str) -> list[tuple[str, str, list[str]]]:
    """(metric, label, values) for every `label="v"` or `label=~"a|b"` matcher of a named
    selector; regex matchers count only when they are plain alternatives of words."""
    out = []
    for sel in selectors(expr):
        metric = _name(sel)
        if not metric:
            continue
        for m in sel.matchers.matchers:
            if m.name == "__name__":
                continue
            if m.op == promql_parser.MatchOp.Equal:
                out.append((metric, m.name, [m.value]))
            elif m.op == promql_parser.MatchOp.Re and re.fullmatch(r"[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*", m.value):
                out.append((metric, m.name, m.value.split("|")))
    return out


def dashboard_exprs(path: Path) -> list[tuple[str, str]]:
    """(where, expr) for every target of every panel (rows included), every annotation query
    and every label_values() variable."""
    dash = json.loads(path.read_text())
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []) or []:
                if t.get("expr"):
                    out.append((f"{path.name} panel {p.get('id')} {p.get('title')!r} {t.get('refId')}", t["expr"]))
            walk(p.get("panels", []) or [])

    walk(dash.get("panels", []))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"{path.name} annotation {a.get('name')!r}", a["expr"]))
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
