#!/usr/bin/env python3
"""What the skaffold schema cannot check: skaffold_check.py OUTDIR

- every artifact's context and Dockerfile exist
- every release's chartPath holds a Chart.yaml, every valuesFiles entry exists
- setValueTemplates only use IMAGE_REPO_/IMAGE_TAG_ of built artifacts and set
  image.repository and image.tag
- the release renders: valuesFiles + setValues + setValueTemplates (with a fake
  built image) go through the same render, kubernetes-validate and checks as
  the value sets of chart.py, and port-forwarded services exist in it
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chart  # noqa: E402

ROOT = chart.ROOT
TEMPLATE_VAR = re.compile(r"\{\{\s*\.(IMAGE_(?:REPO|TAG|DIGEST|FULLY_QUALIFIED)_(\w+))\s*\}\}")


def set_path(values: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        values = values.setdefault(k, {})
    values[keys[-1]] = value


def deep_merge(base: dict, over: dict) -> dict:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v
    return base


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return check(argv[0])
    except (KeyError, TypeError, AttributeError) as e:
        # The schema check reports the details; this one only says it cannot go on.
        print(f"error: skaffold.yaml lacks a field this check needs ({type(e).__name__}: {e});"
              " see the skaffold.yaml schema check", file=sys.stderr)
        return 1


def check(outdir: str) -> int:
    errors: list[str] = []
    cfg = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    artifacts = {}
    for a in cfg["build"]["artifacts"]:
        ctx = ROOT / a.get("context", ".")
        dockerfile = ctx / a.get("docker", {}).get("dockerfile", "Dockerfile")
        if not ctx.is_dir():
            errors.append(f"artifact {a['image']}: context {ctx} missing")
        if not dockerfile.is_file():
            errors.append(f"artifact {a['image']}: Dockerfile {dockerfile} missing")
        artifacts[re.sub(r"[^A-Za-z0-9]", "_", a["image"])] = a["image"]

    forwarded = {(p["resourceType"], p["resourceName"]) for p in cfg.get("portForward", [])}
    rendered_names: set[tuple[str, str]] = set()
    for rel in cfg["deploy"]["helm"]["releases"]:
        chart_dir = ROOT / rel["chartPath"]
        if not (chart_dir / "Chart.yaml").is_file():
            errors.append(f"release {rel['name']}: chartPath {rel['chartPath']} has no Chart.yaml")
            continue
        values: dict = {}
        for vf in rel.get("valuesFiles", []):
            if not (ROOT / vf).is_file():
                errors.append(f"release {rel['name']}: values file {vf} missing")
                continue
            deep_merge(values, yaml.safe_load((ROOT / vf).read_text()) or {})
        for k, v in (rel.get("setValues") or {}).items():
            set_path(values, k, v)
        templates = rel.get("setValueTemplates") or {}
        for key in ("image.repository", "image.tag"):
            if key not in templates:
                errors.append(f"release {rel['name']}: setValueTemplates does not set {key}")
        for k, tmpl in templates.items():
            fake = tmpl
            for full, artifact in TEMPLATE_VAR.findall(tmpl):
                if artifact not in artifacts:
                    errors.append(f"release {rel['name']}: {k} uses {full}, but no artifact {artifact} is built"
                                  f" (built: {', '.join(artifacts)})")
                fake = fake.replace("{{." + full + "}}", "localhost/email-otp" if "REPO" in full else "dev-0123abc")
            if "{{" in fake:
                errors.append(f"release {rel['name']}: {k}: template {tmpl!r} not understood")
            set_path(values, k, fake)
        if errors:
            break
        if chart_dir.resolve() != chart.CHART.resolve():
            errors.append(f"release {rel['name']}: only charts/email-otp is checked here")
            continue
        try:
            chart.cmd_render("dev", outdir, values)
        except chart.CheckError as e:
            errors.append(f"release {rel['name']}: {e}")
            continue
        docs = chart.manifests(chart.render_as(values, rel["name"], rel.get("namespace", "default")))
        image = {c["image"] for d in docs if d["kind"] == "Deployment"
                 for c in d["spec"]["template"]["spec"]["containers"]}
        if image != {"localhost/email-otp:dev-0123abc"}:
            errors.append(f"release {rel['name']}: images {image} are not the built one")
        rendered_names |= {(d["kind"].lower(), d["metadata"]["name"]) for d in docs}
    for kind, name in sorted(forwarded):
        if (kind, name) not in rendered_names:
            errors.append(f"portForward {kind}/{name}: no such resource in the rendered releases")
    if errors:
        print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    chart.helm.disable_logging()
    sys.exit(main(sys.argv[1:]))
