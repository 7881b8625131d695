#!/usr/bin/env python3
"""Check Grafana dashboards: dashboard_check.py [DASHBOARD.json ...] (default: dashboards/*.json).

- valid JSON, a uid and a title, uids unique across the dashboards
- panel ids unique (rows and nested panels included), integer gridPos inside
  the 24-column grid, no two panels overlapping
- a `datasource` template variable of type datasource (prometheus), and every
  panel and target datasource refers to it; every $variable used is defined
- every annotation query uses the datasource variable
- every targets[].expr and annotation expr parses: Grafana macros ($__rate_interval, $__interval,
  $__range) become 5m and $variables a value; the result is parsed by
  promql-parser (naming the panel on a syntax error), then each expression
  becomes a recording rule in a temporary rules file and `promtool check rules`
  parses it too
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import promql  # noqa: E402

DS_REFS = {"${datasource}", "$datasource"}


def check(path: Path, errors: list[str], seen_uids: dict[str, Path]) -> list[tuple[str, str]]:
    def err(msg):
        errors.append(f"{path.name}: {msg}")

    try:
        dash = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        err(f"invalid JSON: {e}")
        return []
    uid = dash.get("uid")
    if not isinstance(uid, str) or not uid:
        err("no uid")
    elif uid in seen_uids:
        err(f"uid {uid!r} also used by {seen_uids[uid].name}")
    else:
        seen_uids[uid] = path
    if not dash.get("title"):
        err("no title")
    if not isinstance(dash.get("schemaVersion"), int):
        err("schemaVersion is not an integer")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        err("no `datasource` template variable of type datasource with query prometheus")

    def ds_ok(ref) -> bool:
        return isinstance(ref, dict) and ref.get("uid") in DS_REFS and ref.get("type") in (None, "prometheus")

    for name, v in variables.items():
        if v.get("type") == "query" and not ds_ok(v.get("datasource")):
            err(f"variable {name}: datasource {v.get('datasource')!r} is not the datasource variable")

    ids: dict[int, str] = {}
    boxes: list[tuple[str, int, int, int, int]] = []
    exprs: list[tuple[str, str]] = []

    def walk(panels):
        for p in panels:
            where = f"panel {p.get('id')} {p.get('title')!r}"
            pid = p.get("id")
            if not isinstance(pid, int) or isinstance(pid, bool):
                err(f"{where}: id is not an integer")
            elif pid in ids:
                err(f"{where}: id {pid} also used by {ids[pid]!r}")
            else:
                ids[pid] = p.get("title")
            gp = p.get("gridPos", {})
            vals = [gp.get(k) for k in ("h", "w", "x", "y")]
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in vals):
                err(f"{where}: gridPos {gp} must have integer h, w, x, y")
            else:
                h, w, x, y = vals
                if h < 1 or w < 1 or x < 0 or y < 0 or x + w > 24:
                    err(f"{where}: gridPos {gp} outside the 24-column grid")
                boxes.append((where, x, y, w, h))
            if p.get("type") != "row":
                if not ds_ok(p.get("datasource")):
                    err(f"{where}: datasource {p.get('datasource')!r} is not the datasource variable")
                targets = p.get("targets") or []
                if not targets:
                    err(f"{where}: no targets")
                refids = [t.get("refId") for t in targets]
                if len(set(refids)) != len(refids):
                    err(f"{where}: duplicate refIds {refids}")
                for t in targets:
                    if not ds_ok(t.get("datasource")):
                        err(f"{where} target {t.get('refId')}: datasource {t.get('datasource')!r} is not the variable")
                    if not t.get("expr"):
                        err(f"{where} target {t.get('refId')}: no expr")
                        continue
                    for var in promql.grafana_variables(t["expr"]):
                        if var not in variables:
                            err(f"{where}: expression uses undefined variable ${var}")
                    problem = promql.parse_error(promql.grafana_to_promql(t["expr"]))
                    if problem:
                        err(f"{where} target {t.get('refId')}: PromQL does not parse: {problem}")
                    exprs.append((f"{where} {t.get('refId')}", t["expr"]))
            walk(p.get("panels") or [])

    walk(dash.get("panels", []))
    for a in dash.get("annotations", {}).get("list", []):
        if "expr" not in a:
            continue  # Grafana's built-in annotations
        where = f"annotation {a.get('name')!r}"
        if not ds_ok(a.get("datasource")):
            err(f"{where}: datasource {a.get('datasource')!r} is not the datasource variable")
        for var in promql.grafana_variables(a["expr"]):
            if var not in variables:
                err(f"{where}: expression uses undefined variable ${var}")
        problem = promql.parse_error(promql.grafana_to_promql(a["expr"]))
        if problem:
            err(f"{where}: PromQL does not parse: {problem}")
        exprs.append((where, a["expr"]))
    for i, (wa, xa, ya, wwa, ha) in enumerate(boxes):
        for wb, xb, yb, wwb, hb in boxes[i + 1:]:
            if xa < xb + wwb and xb < xa + wwa and ya < yb + hb and yb < ya + ha:
                err(f"{wa} overlaps {wb}")
    return exprs


def promtool_parse(exprs: list[tuple[str, str]], errors: list[str]) -> None:
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": promql.grafana_to_promql(e)}
        for i, (_, e) in enumerate(exprs)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "dashboard_exprs.rules.yaml"
        f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
        proc = subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True)
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            # promtool names the failing rule (dashboard:expr_<i>); list i -> panel.
            errors.append("promtool check rules on the dashboard expressions:\n" + out.strip() + "\n  expressions:\n"
                          + "\n".join(f"   {i}: {w}: {promql.grafana_to_promql(e)}" for i, (w, e) in enumerate(exprs)))


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(promql.DASHBOARD_DIR.glob("*.json"))
    if not paths:
        print("error: no dashboards", file=sys.stderr)
        return 1
    errors: list[str] = []
    uids: dict[str, Path] = {}
    exprs = []
    for p in paths:
        exprs += check(p, errors, uids)
    if exprs:
        promtool_parse(exprs, errors)
    if errors:
        print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
        return 1
    print(f"{len(paths)} dashboard(s), {len(exprs)} expressions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
