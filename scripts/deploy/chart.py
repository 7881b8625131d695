#!/usr/bin/env python3
"""Offline checks of the Helm chart charts/email-otp (run by scripts/check-deploy).

  chart.py lint                  helm lint --strict with the chart defaults and every value set
  chart.py render SET OUTDIR     render with scripts/deploy/values/SET.yaml, check structure,
                                 validate with kubernetes-validate --strict, run the set's
                                 assertions; prints the kinds rendered
  chart.py render umbrella OUTDIR  the same for an umbrella chart (made in a temporary directory)
                                 with this chart as a subchart, values scripts/deploy/umbrella.yaml
  chart.py reject                every scripts/deploy/values-bad/*.yaml must fail to render with
                                 the message in its first line (`# expect: ...`)
  chart.py sets                  the value sets for `render`: scripts/deploy/values/*.yaml, umbrella

`lint` also checks that charts/email-otp/README.md's values table is what
scripts/deploy/chart_readme.py generates from values.yaml.

Uses helm-python-sdk (Helm SDK v4 as a library: no helm binary, no cluster).
"""

from __future__ import annotations

import collections
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "email-otp"
VALUES_DIR = Path(__file__).resolve().parent / "values"
BAD_DIR = Path(__file__).resolve().parent / "values-bad"
UMBRELLA_VALUES = Path(__file__).resolve().parent / "umbrella.yaml"
SUBCHART_KEY = "email-otp"
KUBE_VERSION = "1.30.0"
RELEASE, NAMESPACE = "otp", "otp"
FULLNAME = f"{RELEASE}-email-otp"

# Custom resources of the Prometheus Operator: kubernetes-validate ships only the
# built-in Kubernetes schemas, so these kinds are checked for shape here (YAML,
# apiVersion/kind/metadata, the fields we rely on) instead of schema-validated.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


class CheckError(Exception):
    pass


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckError(msg)


def load_values(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def render_as(values: dict, name: str, namespace: str) -> dict[str, str]:
    return helm.Chart.load(str(CHART)).render(values, name=name, namespace=namespace, is_install=True)


def render(values: dict) -> dict[str, str]:
    return render_as(values, RELEASE, NAMESPACE)


def make_umbrella(tmp: Path) -> Path:
    """A parent chart with a copy of charts/email-otp in its charts/ (no `helm dependency build`)."""
    umbrella = tmp / "umbrella"
    (umbrella / "templates").mkdir(parents=True)
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    (umbrella / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "identity-stack", "version": "1.0.0", "type": "application",
        "dependencies": [{"name": SUBCHART_KEY, "version": version, "repository": "file://../email-otp",
                          "condition": f"{SUBCHART_KEY}.enabled"}],
    }, sort_keys=False))
    # A template of the parent that reads global, as umbrella charts do.
    (umbrella / "templates" / "stack.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-stack\n"
        "data:\n  environment: {{ .Values.global.environment | quote }}\n")
    shutil.copytree(CHART, umbrella / "charts" / SUBCHART_KEY)
    return umbrella


def render_umbrella(values: dict) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        umbrella = make_umbrella(Path(tmp))
        return helm.Chart.load(str(umbrella)).render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        for doc in yaml.safe_load_all(text):
            if doc is None:
                continue
            expect(isinstance(doc, dict), f"{path}: a document is not a mapping")
            for key in ("apiVersion", "kind", "metadata"):
                expect(key in doc, f"{path}: document without {key}")
            expect(doc["metadata"].get("name"), f"{path}: {doc['kind']} without metadata.name")
            doc["__template"] = path
            docs.append(doc)
    return docs


def strip(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "__template"}


# --- lint ------------------------------------------------------------------------


def cmd_lint() -> None:
    sets = [("chart defaults", None)] + [(p.stem, load_values(p)) for p in sorted(VALUES_DIR.glob("*.yaml"))]
    problems = []
    for label, values in sets:
        rep = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
        problems += [f"{label}: {e}" for e in rep.get("errors") or []]
        problems += [
            f"{label}: [{m.get('severity')}] {m.get('path')}: {m.get('error')}"
            for m in rep.get("messages") or []
            if (m.get("severity") or 0) >= 2
        ]
    with tempfile.TemporaryDirectory() as tmp:
        umbrella = make_umbrella(Path(tmp))
        rep = helm.lint(str(umbrella), load_values(UMBRELLA_VALUES), strict=True, with_subcharts=True,
                        kube_version=f"v{KUBE_VERSION}")
        problems += [f"umbrella: {e}" for e in rep.get("errors") or []]
        problems += [f"umbrella: [{m.get('severity')}] {m.get('path')}: {m.get('error')}"
                     for m in rep.get("messages") or [] if (m.get("severity") or 0) >= 2]
    if problems:
        raise CheckError("helm lint --strict:\n  " + "\n  ".join(problems))
    readme = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "chart_readme.py"), "--check"],
                            capture_output=True, text=True)
    if readme.returncode != 0:
        raise CheckError(f"chart README:\n{readme.stdout}{readme.stderr}")
    print(f"{len(sets)} value sets + umbrella; {readme.stdout.strip()}")


# --- render + validate --------------------------------------------------------


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    expect(len(found) == 1, f"expected one {kind} {name}, found {len(found)}")
    return found[0]


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "<from>") for e in container.get("env", [])}


def containers(deploy: dict) -> dict[str, dict]:
    return {c["name"]: c for c in deploy["spec"]["template"]["spec"]["containers"]}


def init_containers(workload: dict) -> dict[str, dict]:
    return {c["name"]: c for c in workload["spec"]["template"]["spec"].get("initContainers", [])}


# Containers the chart makes (extraContainers / initContainers are the user's, unchecked).
APP_CONTAINERS = {"api", "worker"}
CHART_CONTAINERS = APP_CONTAINERS | {"redis"}
CHART_INIT_CONTAINERS = {"redis-url"}


def selects(selector: dict, labels: dict) -> bool:
    """matchLabels and the In/NotIn/Exists/DoesNotExist expressions of a label selector."""
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, vals = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def check_common(docs: list[dict], values: dict) -> None:
    """What must hold for every value set."""
    for d in by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet"):
        name = d["metadata"]["name"]
        pod = d["spec"]["template"]["spec"]
        expect(pod.get("automountServiceAccountToken") is False, f"{name}: service account token mounted")
        expect(pod.get("enableServiceLinks") is False, f"{name}: service links injected into the environment")
        psc = pod.get("securityContext", {})
        expect(psc.get("runAsNonRoot") is True, f"{name}: pod not runAsNonRoot")
        expect(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: no RuntimeDefault seccomp")
        sel = d["spec"]["selector"]["matchLabels"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        expect(all(labels.get(k) == v for k, v in sel.items()), f"{name}: selector does not match pod labels")
        for key, value in (values.get("commonLabels") or {}).items():
            expect(d["metadata"]["labels"].get(key) == value, f"{name}: commonLabels {key} missing")
            expect(labels.get(key) is not None, f"{name}: commonLabels {key} missing on the pods")
        names = [c["name"] for c in pod["containers"] + pod.get("initContainers", [])]
        expect(len(names) == len(set(names)), f"{name}: container names repeat: {names}")
        vols = {v["name"] for v in pod.get("volumes", [])} | {
            t["metadata"]["name"] for t in d["spec"].get("volumeClaimTemplates", [])}
        for c in pod["containers"] + pod.get("initContainers", []):
            for m in c.get("volumeMounts", []):
                expect(m["name"] in vols, f"{name}/{c['name']}: mount of undefined volume {m['name']}")
        chart_made = [c for c in pod["containers"] if c["name"] in CHART_CONTAINERS]
        chart_made += [c for c in pod.get("initContainers", []) if c["name"] in CHART_INIT_CONTAINERS]
        for c in chart_made:
            sc = c.get("securityContext", {})
            expect(sc.get("readOnlyRootFilesystem") is True, f"{name}/{c['name']}: root fs writable")
            expect(sc.get("allowPrivilegeEscalation") is False, f"{name}/{c['name']}: privilege escalation")
            expect(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{c['name']}: capabilities not dropped")
            expect("resources" in c, f"{name}/{c['name']}: no resources")
            if c["name"] in CHART_CONTAINERS:
                expect("livenessProbe" in c and "readinessProbe" in c, f"{name}/{c['name']}: probes missing")
    for d in by_kind(docs, "Deployment"):
        pod = d["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod["volumes"]}
        port_names = set()
        own_spread = [t for t in pod.get("topologySpreadConstraints", []) if selects(t["labelSelector"], pod_labels(d))]
        if values.get("topologySpreadConstraints"):
            expect(pod["topologySpreadConstraints"] == values["topologySpreadConstraints"],
                   f"{d['metadata']['name']}: topologySpreadConstraints not the given ones")
        elif values.get("podSpread", {}).get("enabled", True):
            expect(len(own_spread) == 1, f"{d['metadata']['name']}: no spread constraint on its own pods")
            expect(own_spread[0]["whenUnsatisfiable"] == values.get("podSpread", {}).get("whenUnsatisfiable", "ScheduleAnyway"),
                   f"{d['metadata']['name']}: spread {own_spread[0]}")
        else:
            expect("topologySpreadConstraints" not in pod, f"{d['metadata']['name']}: spread although podSpread is off")
        for c in pod["containers"]:
            if c["name"] not in APP_CONTAINERS:
                continue
            env = env_of(c)
            name = f"{d['metadata']['name']}/{c['name']}"
            expect(c["image"].startswith(values.get("image", {}).get("repository", "ghcr.io/email-otp/email-otp")),
                   f"{name}: unexpected image {c['image']}")
            expect(c["args"] in (["api"], ["worker"]), f"{name}: args {c['args']}")
            expect(env.get("OTP_OTP__HMAC_KEY_FILE") == "/etc/email-otp/secrets/hmac-key", f"{name}: no HMAC key file")
            expect("OTP_OTP__HMAC_KEY" not in env, f"{name}: HMAC key passed as plain env")
            expect(env.get("OTP_MAIL__TEMPLATE_DIR") == "/app/mailer", f"{name}: template dir")
            expect(("OTP_REDIS__URL" in env) != ("OTP_REDIS__URL_FILE" in env), f"{name}: exactly one Redis URL setting")
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            expect(mounts.get("/app/mailer") == "templates", f"{name}: templates not at /app/mailer")
            expect(mounts.get("/etc/email-otp/secrets") == "secrets", f"{name}: secrets not mounted")
            # Every *_FILE points into a mounted volume that provides that file.
            for var, path in env.items():
                if var.startswith("OTP_") and var.endswith("_FILE") and path.startswith("/etc/email-otp/"):
                    folder, file = path.rsplit("/", 1)
                    expect(folder in mounts, f"{name}: {var}={path}: nothing mounted at {folder}")
                    vol = vols[mounts[folder]]
                    items = (vol.get("secret") or {}).get("items")
                    if items is not None:
                        expect(file in {i["path"] for i in items}, f"{name}: {var}: volume {vol['name']} has no {file}")
                    elif "emptyDir" in vol:
                        writers = [i for i in init_containers(d).values()
                                   if folder in {m["mountPath"] for m in i.get("volumeMounts", [])}]
                        expect(writers, f"{name}: {var}: emptyDir {vol['name']} that no init container fills")
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            port_names |= set(ports)
            admin = [n for n in ports if n.endswith("admin")]
            expect(len(admin) == 1, f"{name}: one admin port expected, got {ports}")
            expect(env["OTP_ADMIN__LISTEN"] == f"0.0.0.0:{ports[admin[0]]}", f"{name}: admin listen != admin port")
            expect("startupProbe" in c, f"{name}: startupProbe missing")
            for probe, path in (("startupProbe", "/readyz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                expect(c[probe]["httpGet"] == {"path": path, "port": admin[0]}, f"{name}: {probe} {c[probe]}")
            pause = values.get("lifecycle", {}).get("preStopSleepSeconds", 5)
            grace = pod["terminationGracePeriodSeconds"]
            if c["args"] == ["api"]:
                expect(env.get("OTP_HTTP__LISTEN") == f"0.0.0.0:{ports.get('http')}", f"{name}: http listen != http port")
                # The pause runs while the endpoints go; the grace period covers it plus the drain.
                hook = c.get("lifecycle", {}).get("preStop")
                expect(hook == ({"sleep": {"seconds": pause}} if pause else None), f"{name}: preStop {hook}")
                expect(grace > pause, f"{name}: terminationGracePeriodSeconds {grace} <= preStop pause {pause}")
            else:
                expect("lifecycle" not in c, f"{name}: a worker gets no preStop pause")
        secret_vol = vols["secrets"]["secret"]["secretName"]
        existing = values.get("secrets", {}).get("existingSecret")
        items = {i["path"]: i["key"] for i in vols["secrets"]["secret"]["items"]}
        if existing:
            expect(secret_vol == existing, f"secrets volume uses {secret_vol}, not {existing}")
            keys = {"hmacKey": "hmac-key", "smtpPassword": "smtp-password", "redisUrl": ""}
            keys.update(values["secrets"].get("existingSecretKeys") or {})
            expect(items["hmac-key"] == keys["hmacKey"], f"secrets volume: hmac-key from {items['hmac-key']}")
            if values.get("smtp", {}).get("username"):
                expect(items["smtp-password"] == keys["smtpPassword"], "secrets volume: smtp-password key")
        else:
            data = one(docs, "Secret", secret_vol)["data"]
            expect(set(items.values()) <= set(data), f"secrets volume items {items} not all in the Secret {sorted(data)}")
        cm = vols["templates"]["configMap"]["name"]
        existing_cm = values.get("mail", {}).get("existingConfigMap")
        if existing_cm:
            expect(cm == existing_cm, f"templates volume uses {cm}, not {existing_cm}")
        else:
            data = one(docs, "ConfigMap", cm)["data"]
            expect({"otp.hbs", "otp.txt.hbs"} <= set(data), f"template ConfigMap keys {sorted(data)}")
            for var in ("{{code}}", "{{ttl_minutes}}", "{{email}}"):
                expect(var in data["otp.txt.hbs"], f"otp.txt.hbs lacks {var}")
    # Services select existing pods and name existing container ports.
    workloads = by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet")
    for svc in by_kind(docs, "Service"):
        sel = svc["spec"]["selector"]
        matches = [w for w in workloads
                   if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        expect(len(matches) == 1, f"Service {svc['metadata']['name']} selects {len(matches)} workloads")
        cports = {p["name"] for c in matches[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            expect(p["targetPort"] in cports, f"Service {svc['metadata']['name']}: no container port {p['targetPort']}")
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        n = [w for w in workloads if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        expect(len(n) == 1, f"PDB {pdb['metadata']['name']} selects {len(n)} workloads")
    for np in by_kind(docs, "NetworkPolicy"):
        targets = [w for w in workloads if selects(np["spec"]["podSelector"], pod_labels(w))]
        expect(targets, f"NetworkPolicy {np['metadata']['name']} selects no workload")
    check_redis(docs, values)
    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        d = one(docs, target["kind"], target["name"])
        expect("replicas" not in d["spec"], f"{target['name']}: replicas set although an HPA scales it")


def secret_value(docs: list[dict], name: str, key: str) -> str:
    return base64.b64decode(one(docs, "Secret", name)["data"][key]).decode()


def run_url_init(init: dict, password: str) -> str:
    """Run the chart's redis-url init container script here (sh + awk) and return the URL it writes."""
    script = "\n".join(init["command"][2:] + init["args"])
    with tempfile.TemporaryDirectory() as tmp:
        script = script.replace("/etc/email-otp/redis/", f"{tmp}/")
        env = {e["name"]: e["value"] for e in init["env"] if "value" in e}
        env.update({"REDIS_PASSWORD": password, "PATH": "/usr/bin:/bin"})
        proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
        expect(proc.returncode == 0, f"redis-url init script failed: {proc.stderr}")
        return Path(tmp, "url").read_text()


def check_redis(docs: list[dict], values: dict) -> None:
    """Bundled Redis: a password from a Secret, protected mode, the app's URL carries the password."""
    redis_values = values.get("redis", {})
    if redis_values.get("enabled", True) is False:
        expect(not by_kind(docs, "StatefulSet"), "StatefulSet rendered with redis.enabled=false")
        return
    name = f"{FULLNAME}-redis"
    auth = redis_values.get("auth", {})
    sts = one(docs, "StatefulSet", name)
    redis = containers(sts)["redis"]
    line = " ".join(redis["command"] + redis["args"])
    expect('--requirepass "$REDIS_PASSWORD"' in line, f"redis without requirepass: {line}")
    expect("--protected-mode yes" in line, f"redis protected mode off: {line}")
    secret_name = auth.get("existingSecret") or name
    secret_key = auth.get("existingSecretPasswordKey", "redis-password") if auth.get("existingSecret") else "redis-password"
    for var in ("REDIS_PASSWORD", "REDISCLI_AUTH"):
        ref = [e for e in redis["env"] if e["name"] == var]
        expect(len(ref) == 1 and ref[0]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": secret_key},
               f"redis {var} not from Secret {secret_name} key {secret_key}: {ref}")
    host = f"{FULLNAME}-redis"
    if auth.get("existingSecret"):
        expect(not [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == name],
               "chart Redis Secret rendered although redis.auth.existingSecret is set")
    else:
        password = secret_value(docs, name, "redis-password")
        expect(len(password) == 32 and password.isalnum(), "generated Redis password is not 32 alphanumerics")
        url = secret_value(docs, name, "redis-url")
        expect(url == f"redis://:{password}@{host}:6379", f"redis-url {url!r} does not carry the password")
    for d in by_kind(docs, "Deployment"):
        pod = d["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod["volumes"]}
        for c in pod["containers"]:
            if c["name"] in APP_CONTAINERS:
                env = env_of(c)
                expect(env.get("OTP_REDIS__URL_FILE") == "/etc/email-otp/redis/url",
                       f"{c['name']}: Redis URL not from a file: {env.get('OTP_REDIS__URL', env.get('OTP_REDIS__URL_FILE'))}")
        inits = init_containers(d)
        if auth.get("existingSecret"):
            expect("emptyDir" in vols["redis-url"], "redis-url volume is not an emptyDir")
            init = inits.get("redis-url")
            expect(init is not None, f"{d['metadata']['name']}: no redis-url init container")
            expect(list(inits)[0] == "redis-url", "the redis-url init container does not run first")
            ref = [e for e in init["env"] if e["name"] == "REDIS_PASSWORD"][0]["valueFrom"]["secretKeyRef"]
            expect(ref == {"name": secret_name, "key": secret_key}, f"init container password from {ref}")
            for password in ("plain0123", "p@ss:w/rd?#%+ &é"):
                url = run_url_init(init, password)
                parsed = urllib.parse.urlsplit(url)
                expect(parsed.hostname == host and parsed.port == 6379, f"init container URL {url!r}")
                expect(urllib.parse.unquote(parsed.password) == password and parsed.username == "",
                       f"init container URL {url!r} does not carry the password {password!r}")
        else:
            expect(vols["redis-url"]["secret"] == {"secretName": name, "defaultMode": 0o440,
                                                   "items": [{"key": "redis-url", "path": "url"}]},
                   f"redis-url volume {vols['redis-url']}")
            expect("redis-url" not in inits, "redis-url init container without redis.auth.existingSecret")
    nps = [n for n in by_kind(docs, "NetworkPolicy") if n["metadata"]["name"] == name]
    if redis_values.get("networkPolicy", {}).get("enabled", True):
        expect(len(nps) == 1, "no NetworkPolicy for the bundled Redis")
        spec = nps[0]["spec"]
        expect(selects(spec["podSelector"], pod_labels(sts)), "Redis NetworkPolicy does not select Redis")
        peers = spec["ingress"][0]["from"]
        apps = [w for w in by_kind(docs, "Deployment")]
        expect(all(any("podSelector" in p and "namespaceSelector" not in p and selects(p["podSelector"], pod_labels(w))
                       for p in peers) for w in apps), "Redis NetworkPolicy does not admit every app Deployment")
        expect(spec["ingress"][0]["ports"] == [{"port": "redis", "protocol": "TCP"}], "Redis NetworkPolicy ports")
        expect(peers[1:] == redis_values.get("networkPolicy", {}).get("extraFrom", []), "redis.networkPolicy.extraFrom")
    else:
        expect(not nps, "Redis NetworkPolicy although redis.networkPolicy.enabled is false")


def assert_default(docs, values):
    d = one(docs, "Deployment", FULLNAME)
    cs = containers(d)
    expect(list(cs) == ["api", "worker"], f"default pod containers {list(cs)}")
    expect(env_of(cs["worker"])["OTP_ADMIN__LISTEN"] == "0.0.0.0:9091", "worker sidecar admin port")
    expect(d["spec"]["replicas"] == 2, "default replicas")
    expect(d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 45, "default grace period")
    expect(cs["api"]["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}, "default preStop pause")
    svc = one(docs, "Service", FULLNAME)
    expect({p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"http": 8080, "admin": 9090, "worker-admin": 9091},
           f"service ports {svc['spec']['ports']}")
    sts = one(docs, "StatefulSet", f"{FULLNAME}-redis")
    redis = sts["spec"]["template"]["spec"]["containers"][0]
    args = " ".join(redis["args"])
    for flag in ("--appendonly yes", "--maxmemory-policy noeviction"):
        expect(flag in args, f"redis args lack {flag}: {args}")
    expect(redis["image"] == "redis:7.2-alpine", f"redis image {redis['image']}")
    expect(sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data", "redis PVC")
    rsvc = one(docs, "Service", f"{FULLNAME}-redis")
    expect(rsvc["spec"]["clusterIP"] == "None", "redis service is not headless")
    expect(env_of(cs["api"])["OTP_REDIS__URL_FILE"] == "/etc/email-otp/redis/url", "redis url file")
    secret = one(docs, "Secret", FULLNAME)
    expect(set(secret["data"]) == {"hmac-key"}, f"secret keys {sorted(secret['data'])}")
    expect(set(one(docs, "Secret", f"{FULLNAME}-redis")["data"]) == {"redis-password", "redis-url"}, "redis secret keys")
    expect("OTP_SMTP__PASSWORD_FILE" not in env_of(cs["api"]), "password file without smtp.username")
    for kind in ("HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule"):
        expect(not by_kind(docs, kind), f"{kind} rendered by default")
    expect([n["metadata"]["name"] for n in by_kind(docs, "NetworkPolicy")] == [f"{FULLNAME}-redis"],
           "by default exactly one NetworkPolicy, the Redis one")
    expect(len(by_kind(docs, "PodDisruptionBudget")) == 1, "default PDB")
    spread = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
    expect(spread == [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                       "labelSelector": {"matchLabels": d["spec"]["selector"]["matchLabels"]}}],
           f"default spread {spread}")
    expect(all(":" in c["image"] and "@" not in c["image"] for c in cs.values()), "default image by tag")
    expect("initContainers" not in d["spec"]["template"]["spec"], "init containers by default")


def assert_split(docs, values):
    api = containers(one(docs, "Deployment", FULLNAME))
    worker = containers(one(docs, "Deployment", f"{FULLNAME}-worker"))
    expect(list(api) == ["api"] and list(worker) == ["worker"], f"split containers {list(api)} {list(worker)}")
    expect(worker["worker"]["args"] == ["worker"], "worker args")
    expect(env_of(worker["worker"])["OTP_ADMIN__LISTEN"] == "0.0.0.0:9090", "worker admin port in its own pod")
    expect(len(by_kind(docs, "HorizontalPodAutoscaler")) == 2, "an HPA per Deployment")
    expect(len(by_kind(docs, "PodDisruptionBudget")) == 2, "a PDB per Deployment")
    one(docs, "Service", f"{FULLNAME}-worker")
    ports = {p["name"] for p in one(docs, "Service", FULLNAME)["spec"]["ports"]}
    expect("worker-admin" not in ports, "worker-admin port on the API service in split mode")
    rule = one(docs, "PrometheusRule", FULLNAME)
    exprs = "\n".join(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])
    expect(f'absent(up{{{values["prometheusRule"]["upSelector"]}}})' in exprs and 'job="email-otp"' not in exprs,
           "prometheusRule.upSelector replaces the target selector of the alerts")


def assert_external_redis(docs, values):
    expect(not by_kind(docs, "StatefulSet"), "StatefulSet rendered with redis.enabled=false")
    api = containers(one(docs, "Deployment", FULLNAME))["api"]
    env = env_of(api)
    expect(env["OTP_REDIS__URL"] == values["externalRedis"]["url"], "external redis url")
    expect(env["OTP_REDIS__KEY_PREFIX"] == "otp-prod", "key prefix")


def assert_external_sentinel(docs, values):
    expect(not by_kind(docs, "StatefulSet"), "StatefulSet rendered with redis.enabled=false")
    deploy = one(docs, "Deployment", FULLNAME)
    for name, c in containers(deploy).items():
        env = env_of(c)
        expect(env.get("OTP_REDIS__MODE") == "sentinel", f"{name}: redis mode")
        expect(env.get("OTP_REDIS__MASTER_NAME") == "mymaster", f"{name}: master name")
        expect(env.get("OTP_REDIS__SENTINELS", "").count(":26379") == 3, f"{name}: three sentinels")
        expect(env.get("OTP_REDIS__WAIT_REPLICAS") == "1", f"{name}: replica wait")
        path = env.get("OTP_REDIS__SENTINEL_PASSWORD_FILE", "")
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        expect(path.startswith("/etc/email-otp/sentinel/") and "/etc/email-otp/sentinel" in mounts,
               f"{name}: sentinel password file mounted")
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    expect(volumes["sentinel-password"]["secret"]["secretName"] == "redis-sentinel", "sentinel secret")


def assert_external_cluster(docs, values):
    for name, c in containers(one(docs, "Deployment", FULLNAME)).items():
        env = env_of(c)
        expect(env.get("OTP_REDIS__MODE") == "cluster", f"{name}: redis mode")
        expect(env.get("OTP_REDIS__CLUSTER_NODES", "").count(":6379") == 2, f"{name}: more seeds")
        expect(env.get("OTP_QUEUE__PARTITIONS") == "16", f"{name}: partitions")
        expect("OTP_REDIS__MASTER_NAME" not in env, f"{name}: no sentinel keys in cluster mode")


def assert_full(docs, values):
    kinds = {d["kind"] for d in docs}
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule",
                 "NetworkPolicy", "StatefulSet"):
        expect(kind in kinds, f"{kind} missing with every feature on")
    rule = one(docs, "PrometheusRule", FULLNAME)
    # files/alerts.yaml with its target selector made this release's, and nothing else changed.
    release_selector = f'job=~"{FULLNAME}|{FULLNAME}-worker",namespace="{NAMESPACE}"'
    source = (CHART / "files" / "alerts.yaml").read_text()
    expect('up{job="email-otp"}' in source, 'files/alerts.yaml selects no up{job="email-otp"}')
    expect(rule["spec"] == yaml.safe_load(source.replace('job="email-otp"', release_selector)),
           "PrometheusRule spec is not files/alerts.yaml with this release's target selector")
    exprs = "\n".join(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])
    expect(f"up{{{release_selector}}}" in exprs and 'job="email-otp"' not in exprs,
           "PrometheusRule: up selects this release's ServiceMonitor jobs")
    for svc in by_kind(docs, "Service"):
        if svc["metadata"]["labels"].get("app.kubernetes.io/component") in ("api", "worker"):
            expect(svc["metadata"]["name"] in (FULLNAME, f"{FULLNAME}-worker"),
                   f"Service {svc['metadata']['name']}: the job it gives is not in the up selector")
    expect(rule["metadata"]["labels"].get("release") == "kube-prometheus-stack", "PrometheusRule labels")
    sm = one(docs, "ServiceMonitor", FULLNAME)
    expect([e["port"] for e in sm["spec"]["endpoints"]] == ["admin", "worker-admin"], "ServiceMonitor scrapes both admin ports")
    expect(all(e["path"] == "/metrics" for e in sm["spec"]["endpoints"]), "ServiceMonitor path")
    dash = one(docs, "ConfigMap", f"{FULLNAME}-dashboard")
    expect(dash["metadata"]["labels"].get("grafana_dashboard") == "1", "dashboard label")
    canonical = json.loads((ROOT / "dashboards" / "email-otp.json").read_text())
    expect(json.loads(dash["data"]["email-otp.json"]) == canonical, "dashboard ConfigMap differs from dashboards/email-otp.json")
    cs = containers(one(docs, "Deployment", FULLNAME))
    env = env_of(cs["worker"])
    expect(env["OTP_SMTP__PASSWORD_FILE"] == "/etc/email-otp/secrets/smtp-password", "smtp password file")
    expect(env["OTP_SMTP__SECURITY"] == "tls" and env["OTP_SMTP__PORT"] == "465", "smtp settings")
    expect(env["OTP_TELEMETRY__OTLP_ENDPOINT"] == values["telemetry"]["otlpEndpoint"], "otlp endpoint")
    expect(env["OTP_HTTP__TRUSTED_PROXIES"] == '["10.0.0.0/8"]', f"trusted proxies {env.get('OTP_HTTP__TRUSTED_PROXIES')}")
    expect(env["RUST_LOG"] == "info,email_otp=debug", "extraEnv")
    expect(env["OTP_LOG__FORMAT"] == "pretty", "log format")
    secret = one(docs, "Secret", FULLNAME)
    expect(set(secret["data"]) == {"hmac-key", "smtp-password"}, f"secret keys {sorted(secret['data'])}")
    tmpl = one(docs, "ConfigMap", f"{FULLNAME}-templates")["data"]
    expect(tmpl["otp.txt.hbs"].startswith("Code for {{email}}"), "mail.templates did not override otp.txt.hbs")
    expect("<html" in tmpl["otp.hbs"], "default otp.hbs kept next to the override")
    expect(len(by_kind(docs, "NetworkPolicy")) == 2, "NetworkPolicies for the app and for Redis")
    pod = one(docs, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    expect(pod["terminationGracePeriodSeconds"] == 70, "terminationGracePeriodSeconds override")
    expect(cs["api"]["lifecycle"]["preStop"]["sleep"]["seconds"] == 10, "preStop override")
    expect(cs["api"]["readinessProbe"]["periodSeconds"] == 3, "probes.readiness override")
    expect(cs["api"]["startupProbe"]["failureThreshold"] == 60, "probes.startup override")
    expect(cs["api"]["startupProbe"]["periodSeconds"] == 1, "probes.startup keeps the other defaults")
    # Production plumbing.
    d = one(docs, "Deployment", FULLNAME)
    meta = d["spec"]["template"]["metadata"]
    digest = values["image"]["digest"]
    expect(cs["api"]["image"] == f"ghcr.io/email-otp/email-otp@{digest}", f"image by digest: {cs['api']['image']}")
    expect(cs["worker"]["image"] == cs["api"]["image"], "worker image")
    sts = one(docs, "StatefulSet", f"{FULLNAME}-redis")
    expect(containers(sts)["redis"]["image"] == f"redis@{values['redis']['image']['digest']}", "redis image by digest")
    for doc in docs:
        expect(doc["metadata"].get("labels", {}).get("team") == "identity", f"{doc['kind']} {doc['metadata']['name']}: no commonLabels")
    expect(meta["labels"]["team"] == "identity" and meta["labels"]["tier"] == "api-override",
           f"API pod labels {meta['labels']} (api.podLabels wins over podLabels)")
    expect(meta["annotations"]["example.com/owner"] == "identity" and meta["annotations"]["example.com/scrape-logs"] == "true",
           f"API pod annotations {meta['annotations']}")
    rmeta = sts["spec"]["template"]["metadata"]
    expect(rmeta["labels"]["tier"] == "cache" and rmeta["labels"]["team"] == "identity", f"redis pod labels {rmeta['labels']}")
    expect(rmeta["annotations"] == {"backup.example.com/enabled": "true"}, f"redis pod annotations {rmeta.get('annotations')}")
    expect(list(containers(sts)) == ["redis", "exporter"], f"redis containers {list(containers(sts))}")
    expect(list(cs) == ["api", "worker", "proxy", "log-shipper"], f"API pod containers {list(cs)}")
    expect(list(init_containers(d)) == ["redis-url", "init-check", "wait-for-relay"], f"init containers {list(init_containers(d))}")
    expect(cs["api"]["envFrom"] == values["envFrom"] + values["api"]["envFrom"], f"api envFrom {cs['api'].get('envFrom')}")
    expect(cs["worker"]["envFrom"] == values["envFrom"] + values["worker"]["envFrom"], "worker envFrom")
    expect(d["spec"]["template"]["spec"]["topologySpreadConstraints"] == values["topologySpreadConstraints"],
           "topologySpreadConstraints replace podSpread")


def assert_existing_secret(docs, values):
    expect(not by_kind(docs, "Secret"), "Secret rendered although secrets.existingSecret is set")
    expect(not [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-templates")],
           "template ConfigMap rendered although mail.existingConfigMap is set")
    d = one(docs, "Deployment", FULLNAME)
    for c in containers(d).values():
        env = env_of(c)
        expect(env.get("OTP_REDIS__URL_FILE") == "/etc/email-otp/redis/url", "redis url file")
        expect(env.get("OTP_SMTP__PASSWORD_FILE") == "/etc/email-otp/secrets/smtp-password", "smtp password file")
    vols = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
    expect(vols["redis-url"]["secret"]["secretName"] == "redis-credentials", "redis url secret volume")
    expect(vols["secrets"]["secret"]["items"] == [{"key": "otp-hmac", "path": "hmac-key"},
                                                  {"key": "smtp-password", "path": "smtp-password"}],
           f"secrets volume items {vols['secrets']['secret']['items']}")


def assert_secret_keys(docs, values):
    expect(not by_kind(docs, "Secret"), "Secret rendered although secrets.existingSecret is set")
    expect(not by_kind(docs, "NetworkPolicy"), "NetworkPolicy without a bundled Redis or networkPolicy.enabled")
    d = one(docs, "Deployment", FULLNAME)
    vols = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
    expect("redis-url" not in vols, "redis-url volume although the URL is in secrets.existingSecret")
    expect(vols["secrets"]["secret"]["items"] == [{"key": "HMAC_KEY", "path": "hmac-key"},
                                                  {"key": "SMTP_PASSWORD", "path": "smtp-password"},
                                                  {"key": "REDIS_URL", "path": "redis-url"}],
           f"secrets volume items {vols['secrets']['secret']['items']}")
    for c in containers(d).values():
        expect(env_of(c).get("OTP_REDIS__URL_FILE") == "/etc/email-otp/secrets/redis-url", "redis url file")


def assert_umbrella(docs, values):
    """The subchart renders as on its own (same names), next to the parent's own template."""
    sub = values[SUBCHART_KEY]
    assert_default(docs, sub)
    stack = one(docs, "ConfigMap", f"{RELEASE}-stack")
    expect(stack["data"]["environment"] == values["global"]["environment"], "parent template lost global")
    expect(all(d["__template"].startswith(("identity-stack/templates/", "identity-stack/charts/email-otp/templates/"))
               for d in docs), "unexpected template paths")


def assert_dev(docs, values):
    cs = containers(one(docs, "Deployment", FULLNAME))
    env = env_of(cs["worker"])
    expect(env["OTP_MAIL__TRANSPORT"] == "outbox" and env["OTP_MAIL__OUTBOX_DIR"] == "/app/outbox", "outbox settings")
    expect("/app/outbox" in {m["mountPath"] for m in cs["worker"]["volumeMounts"]}, "outbox volume")
    expect("OTP_SMTP__HOST" not in env, "smtp host without one configured")
    sts = one(docs, "StatefulSet", f"{FULLNAME}-redis")
    expect("volumeClaimTemplates" not in sts["spec"], "PVC although persistence is off")


ASSERTIONS = {
    "default": assert_default,
    "split": assert_split,
    "external-redis": assert_external_redis,
    "external-sentinel": assert_external_sentinel,
    "external-cluster": assert_external_cluster,
    "full": assert_full,
    "existing-secret": assert_existing_secret,
    "dev": assert_dev,
    "secret-keys": assert_secret_keys,
    "umbrella": assert_umbrella,
}


def kube_validate(docs: list[dict], outdir: Path, name: str) -> None:
    path = outdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all([strip(d) for d in docs], sort_keys=False))
    venv_bin = Path(sys.executable).parent
    exe = venv_bin / "kubernetes-validate"
    proc = subprocess.run([str(exe), "--strict", "--quiet", "-k", KUBE_VERSION, str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise CheckError(f"kubernetes-validate --strict -k {KUBE_VERSION} {path}:\n{proc.stdout}{proc.stderr}")


def check_crd_shape(doc: dict) -> None:
    name = f"{doc['kind']} {doc['metadata']['name']}"
    expect(doc["apiVersion"] == "monitoring.coreos.com/v1", f"{name}: apiVersion {doc['apiVersion']}")
    spec = doc.get("spec")
    expect(isinstance(spec, dict), f"{name}: no spec")
    if doc["kind"] == "ServiceMonitor":
        expect(spec.get("endpoints") and spec.get("selector"), f"{name}: endpoints/selector missing")
    if doc["kind"] == "PrometheusRule":
        groups = spec.get("groups")
        expect(groups and all(g.get("rules") for g in groups), f"{name}: groups/rules missing")


def cmd_render(set_name: str, outdir: str, values: dict | None = None) -> None:
    """Render one value set (scripts/deploy/values/SET.yaml unless values are given) and check it."""
    umbrella = set_name == "umbrella" and values is None
    if values is None:
        values = load_values(UMBRELLA_VALUES if umbrella else VALUES_DIR / f"{set_name}.yaml")
    try:
        docs = manifests(render_umbrella(values) if umbrella else render(values))
    except helm.HelmError as e:
        raise CheckError(f"render of value set {set_name} failed: {e}") from e
    builtin = [d for d in docs if d["kind"] not in CRD_KINDS]
    for d in docs:
        if d["kind"] in CRD_KINDS:
            check_crd_shape(d)
    kube_validate(builtin, Path(outdir), set_name)
    check_common(docs, values[SUBCHART_KEY] if umbrella else values)
    ASSERTIONS[set_name](docs, values)
    counts = collections.Counter(d["kind"] for d in docs)
    print(", ".join(f"{k}" + (f"x{n}" if n > 1 else "") for k, n in sorted(counts.items())))


def cmd_reject() -> None:
    cases = sorted(BAD_DIR.glob("*.yaml"))
    expect(cases, "no cases in scripts/deploy/values-bad")
    for case in cases:
        first = case.read_text().splitlines()[0]
        expect(first.startswith("# expect: "), f"{case.name}: first line must be '# expect: <message>'")
        wanted = first[len("# expect: "):].strip()
        try:
            render(load_values(case))
        except helm.HelmError as e:
            expect(wanted in str(e), f"{case.name}: failed, but without {wanted!r}: {e}")
            continue
        raise CheckError(f"{case.name}: rendered although it should fail with {wanted!r}")
    print(f"{len(cases)} bad value sets rejected")


def main(argv: list[str]) -> int:
    helm.disable_logging()
    try:
        if argv[:1] == ["lint"]:
            cmd_lint()
        elif argv[:1] == ["render"] and len(argv) == 3:
            cmd_render(argv[1], argv[2])
        elif argv[:1] == ["reject"]:
            cmd_reject()
        elif argv[:1] == ["sets"]:
            print(" ".join([p.stem for p in sorted(VALUES_DIR.glob("*.yaml"))] + ["umbrella"]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except CheckError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
