#!/usr/bin/env python3
"""Turns the raw measurements of bench/run into result records, a table and (--smoke) checks.

Input: one JSON object per line, written by bench/run's `measure` and `ceiling` functions.
Output: the table on stdout; with --out, one JSON line per run and one summary line per phase
appended to that file (and, with --latest, the same lines replacing that file).
"""
import argparse
import json
import statistics
import sys
import time

# Speed targets at the default configuration, as ratios to the Redis ceiling measured in the same
# run (so they carry across machines) and as service CPU per request (generate judged in api mode,
# where the service's CPU is the request path alone).
TARGETS = {
    "generate_serve": {"ratio_to_ceiling": 0.25, "p99_ms": 10},
    "generate_api": {"service_us_per_request": 30, "p99_ms": 10},
    "verify_serve": {"ratio_to_ceiling": 0.50, "service_us_per_request": 20, "p99_ms": 10},
    "e2e": {"ratio_to_ceiling": 0.10, "lat_p99_ms": 1000},
}
AT_LEAST = ("rps", "mails_per_s", "ratio_to_ceiling")
RSS_IDLE_MB, RSS_LOAD_MB = 16, 32
# A run is flagged as noisy when processes outside the bench used more than this many cores.
NOISE_CORES = 0.15
HTTP_PHASES = ["generate_serve", "generate_api", "generate_api_warn", "verify_serve", "verify_serve_warn"]
GENERATE_PHASES = ("generate_serve", "generate_api", "generate_api_warn")
VERIFY_PHASES = ("verify_serve", "verify_serve_warn")
PREPARE_PHASES = ("verify_prepare", "verify_prepare_warn")
LABELS = {
    "generate_serve": "generate, serve",
    "generate_api": "generate, api",
    "generate_api_warn": "  same at warn",
    "verify_serve": "verify wrong, serve",
    "verify_serve_warn": "  same at warn",
    "verify_prepare": "verify preparation",
    "verify_prepare_warn": "verify prep., warn",
    "e2e": "end to end",
}


def counter_delta(before, after, prefix):
    """{label: delta} for counters named prefix{outcome=label,...}."""
    out = {}
    for key, value in after.items():
        if not key.startswith(prefix + "{"):
            continue
        d = value - before.get(key, 0)
        if d:
            label = key[len(prefix) + 1 : -1]
            label = ",".join(p.split("=", 1)[1] for p in label.split(",") if "=" in p)
            out[label] = int(d)
    return out


def record(raw):
    r = {k: raw[k] for k in ("run_id", "mode", "phase", "rep")}
    res = raw["result"]
    if raw["kind"] == "redis-benchmark":
        r.update(kind="ceiling", rps=res["rps"], detail=res["line"])
        r["compilers_seen"] = raw.get("compilers_seen", 0)
        return r
    clk = raw["clk_tck"]
    wall = raw["wall_ms"] / 1000
    cpu = {k: v / clk for k, v in raw["ticks"].items()}
    cpu["load"] = raw["load_cpu_ms"] / 1000
    busy = raw["sys_busy_ticks"] / clk
    cpu["other"] = max(0.0, busy - sum(cpu.values()))
    r["wall_s"] = round(wall, 3)
    r["cpu_cores"] = {k: round(v / wall, 3) for k, v in cpu.items()}
    r["rss_mb"] = round(raw["rss_kb"] / 1024, 1)
    r["rss_idle_mb"] = round(raw["rss_idle_kb"] / 1024, 1)
    r["sink_mails"] = raw["sink_mails"]
    before, after = raw["counters_before"], raw["counters_after"]
    r["generate_outcomes"] = counter_delta(before, after, "generate_total")
    r["verify_outcomes"] = counter_delta(before, after, "verify_total")
    r["job_outcomes"] = counter_delta(before, after, "jobs_total")
    r["smtp_errors"] = counter_delta(before, after, "smtp_errors_total")
    r["compilers_seen"] = raw["compilers_seen"]
    r["attempt"] = raw.get("attempt", 1)
    r["loadavg_1m_before"] = raw["loadavg_1m_before"]
    if raw["kind"] == "wrk":
        dur = res["duration_us"] / 1e6
        n = res["requests"]
        r.update(
            kind="wrk",
            requests=n,
            rps=round(n / dur, 1) if dur else 0.0,
            p50_ms=res["p50_us"] / 1000,
            p90_ms=res["p90_us"] / 1000,
            p99_ms=res["p99_us"] / 1000,
            max_ms=res["max_us"] / 1000,
            non2xx=res["non2xx"],
            socket_errors=res["connect_errors"] + res["read_errors"] + res["write_errors"] + res["timeouts"],
        )
        r["service_us_per_request"] = round(cpu["service"] * 1e6 / n, 1) if n else None
    else:
        r.update(kind="burst", **res)
        r["service_us_per_mail"] = round(cpu["service"] * 1e6 / res["mails"], 1) if res.get("mails") else None
    return r


def mmm(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(phase, recs, ceiling):
    s = {"run_id": recs[0]["run_id"], "mode": recs[0]["mode"], "phase": phase, "kind": "summary", "runs": len(recs)}
    keys = ["rps", "p50_ms", "p99_ms", "service_us_per_request", "rss_mb"]
    if phase == "e2e":
        keys = ["mails_per_s", "sink_mails_per_s", "lat_p50_ms", "lat_p99_ms", "rps", "service_us_per_mail", "rss_mb"]
    for k in keys:
        s[k] = mmm([r.get(k) for r in recs])
    s["rss_idle_mb"] = recs[0]["rss_idle_mb"]
    s["cpu_cores_median"] = {
        k: round(statistics.median(r["cpu_cores"][k] for r in recs), 2) for k in recs[0]["cpu_cores"]
    }
    if recs[0]["kind"] == "wrk":
        s["non2xx"] = sum(r["non2xx"] for r in recs)
        s["socket_errors"] = sum(r["socket_errors"] for r in recs)
        s["requests"] = sum(r["requests"] for r in recs)
    else:
        s["errors"] = sum(r.get("errors", 0) + r.get("non2xx", 0) for r in recs)
        s["all_arrived"] = all(r.get("all_arrived") and r.get("with_code") == r.get("mails") for r in recs)
    for k in ("generate_outcomes", "verify_outcomes", "job_outcomes", "smtp_errors"):
        total = {}
        for r in recs:
            for label, n in r[k].items():
                total[label] = total.get(label, 0) + n
        if total:
            s[k] = total
    main = "mails_per_s" if phase == "e2e" else "rps"
    if ceiling and s.get(main):
        s["ratio_to_ceiling"] = round(s[main]["median"] / ceiling, 3)
    s["noise_retries"] = sum(r["attempt"] - 1 for r in recs)
    s["other_cpu_cores_max"] = max(r["cpu_cores"]["other"] for r in recs)
    s["noisy"] = any(r["compilers_seen"] for r in recs) or s["other_cpu_cores_max"] > NOISE_CORES
    s["targets"] = check_targets(phase, s)
    return s


def check_targets(phase, s):
    t = TARGETS.get(phase)
    if not t:
        return None
    out = {}
    for k, want in t.items():
        have = s.get(k)
        if isinstance(have, dict):
            have = have["median"]
        ok = have is not None and (have >= want if k in AT_LEAST else have <= want)
        out[k] = {"target": want, "median": have, "met": ok}
    if phase in GENERATE_PHASES:
        out["zero_errors"] = {"met": s["non2xx"] == 0 and s["socket_errors"] == 0}
    if phase in VERIFY_PHASES:
        unexpected = {k: v for k, v in s.get("verify_outcomes", {}).items() if k != "incorrect"}
        out["zero_errors"] = {"met": s["socket_errors"] == 0 and not unexpected, "unexpected": unexpected}
    if phase == "e2e":
        out["zero_errors"] = {"met": s["errors"] == 0 and s["all_arrived"]}
    out["rss_load"] = {"target_mb": RSS_LOAD_MB, "max": s["rss_mb"]["max"], "met": s["rss_mb"]["max"] <= RSS_LOAD_MB}
    out["rss_idle"] = {"target_mb": RSS_IDLE_MB, "value": s["rss_idle_mb"], "met": s["rss_idle_mb"] <= RSS_IDLE_MB}
    return out


def fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def trio(m, digits=0):
    if not m:
        return "-"
    return " / ".join(fmt(m[k], digits) for k in ("min", "median", "max"))


def table(args, recs, sums, ceil_start, ceil_end):
    mach = json.loads(args.machine)
    lines = []
    lines.append(
        f"email-otp bench, {args.mode} run {args.run_id}: {args.commit}; "
        f"{mach['nproc']} cores, {mach['cpu']}, {mach['mem_kb'] // 1024} MB; {args.settings}"
    )
    if args.inherited:
        lines.append(f"OTP_* set by the caller: {args.inherited}")
    ceil = statistics.mean([c for c in (ceil_start, ceil_end) if c]) if (ceil_start or ceil_end) else None
    lines.append(
        f"ceiling: redis-benchmark SET -c 50 -P 1: {fmt(ceil_start)} req/s at the start, {fmt(ceil_end)} at the end"
        f" (ratios below use the mean, {fmt(ceil)})"
    )
    lines.append("")
    cpu_hdr = "CPU cores svc/redis/load/sink/other"
    hdr = (
        f"{'phase':<20} {'req/s min/median/max':>24} {'xceil':>5} {'p50 ms':>6} {'p99 ms min/med/max':>18} "
        f"{'non-2xx':>9} {'errors':>6} {'svc µs/req':>10} {'RSS MB idle/end':>15}  {cpu_hdr}"
    )
    lines.append(hdr)

    def cpu(c):
        return "/".join(f"{c[k]:.2f}" for k in ("service", "redis", "load", "sink", "other"))

    for phase in HTTP_PHASES:
        s = sums.get(phase)
        if not s:
            continue
        lines.append(
            f"{LABELS[phase]:<20} {trio(s['rps']):>24} {fmt(s.get('ratio_to_ceiling'), 2):>5} "
            f"{fmt(s['p50_ms']['median'], 2):>6} {trio(s['p99_ms'], 1):>18} {s['non2xx']:>9,} "
            f"{s['socket_errors']:>6,} {fmt(s['service_us_per_request']['median'], 1):>10} "
            f"{fmt(s['rss_idle_mb'], 1) + ' / ' + fmt(s['rss_mb']['max'], 1):>15}  {cpu(s['cpu_cores_median'])}"
        )
    s = sums.get("e2e")
    if s:
        lines.append("")
        lines.append(
            f"{'end to end':<20} {'mails/s min/median/max':>24} {'xceil':>5} {'latency p50 ms min/med/max':>27} "
            f"{'p99 ms min/med/max':>22} {'svc µs/mail':>11} {'RSS MB idle/end':>15}  {cpu_hdr}"
        )
        lines.append(
            f"{fmt(args.e2e_count) + ' per burst':<20} {trio(s['mails_per_s']):>24} "
            f"{fmt(s.get('ratio_to_ceiling'), 3):>5} {trio(s['lat_p50_ms']):>27} {trio(s['lat_p99_ms']):>22} "
            f"{fmt(s['service_us_per_mail']['median'], 1):>11} "
            f"{fmt(s['rss_idle_mb'], 1) + ' / ' + fmt(s['rss_mb']['max'], 1):>15}  {cpu(s['cpu_cores_median'])}"
        )
        lines.append(
            f"{'':<20} generate side of the bursts: {trio(s['rps'])} req/s; errors {s['errors']}; "
            f"every mail arrived with its code: {s['all_arrived']}"
        )
    lines.append("")
    for phase in HTTP_PHASES + ["e2e"]:
        s = sums.get(phase)
        if not s:
            continue
        mix = []
        if s.get("generate_outcomes"):
            mix.append("generate " + json.dumps(s["generate_outcomes"], separators=(",", ":")))
        if s.get("verify_outcomes"):
            mix.append("verify " + json.dumps(s["verify_outcomes"], separators=(",", ":")))
        if s.get("job_outcomes"):
            mix.append("worker jobs " + json.dumps(s["job_outcomes"], separators=(",", ":")))
        if s.get("smtp_errors"):
            mix.append("smtp errors " + json.dumps(s["smtp_errors"], separators=(",", ":")))
        if phase == "generate_serve":
            mails = sum(r["sink_mails"] for r in recs if r["phase"] == phase)
            wall = sum(r["wall_s"] for r in recs if r["phase"] == phase)
            mix.append(f"mails delivered meanwhile {mails:,} ({fmt(mails / wall if wall else 0)}/s)")
        lines.append(f"{LABELS[phase] + ':':<21}" + "; ".join(mix))
    if args.mode == "full":
        lines.append("")
        lines.append("speed targets, judged on the median:")
        for phase in HTTP_PHASES + ["e2e"]:
            s = sums.get(phase)
            if not s or not s.get("targets"):
                continue
            parts = []
            for k, t in s["targets"].items():
                if "target" in t:
                    digits = 2 if k == "ratio_to_ceiling" else 1
                    parts.append(f"{k} {fmt(t['median'], digits)} vs {t['target']:,} {'met' if t['met'] else 'NOT met'}")
                elif "target_mb" in t:
                    v = t.get("max", t.get("value"))
                    parts.append(f"{k} {fmt(v, 1)} MB vs {t['target_mb']} {'met' if t['met'] else 'NOT met'}")
                else:
                    parts.append(f"{k} {'met' if t['met'] else 'NOT met'}")
            lines.append(f"  {LABELS[phase] + ':':<21}" + "; ".join(parts))
    noisy = [p for p, s in sums.items() if s.get("noisy")]
    if noisy or any(r.get("compilers_seen") for r in recs if r["kind"] == "ceiling"):
        lines.append("")
        lines.append(
            f"NOTE: other processes (rustc/cargo or more than {NOISE_CORES} cores of 'other' CPU) ran during "
            f"{', '.join(noisy) or 'the ceiling'}: those numbers are noisy."
        )
    lines.append(f"\nbench took {int(args.elapsed_ms) / 1000:.0f} s")
    return "\n".join(lines)


def smoke_checks(recs, sums, args):
    problems = []
    ceil = [r for r in recs if r["kind"] == "ceiling"]
    if len(ceil) != 2 or not all(r["rps"] > 0 for r in ceil):
        problems.append("ceiling: redis-benchmark did not give two figures")
    for phase in HTTP_PHASES + list(PREPARE_PHASES) + ["e2e"]:
        wanted = phase.replace("verify_prepare", "verify_serve")
        if phase not in sums and f",{wanted}," in args.phases:
            problems.append(f"{phase}: did not run")
    for phase in GENERATE_PHASES:
        s = sums.get(phase)
        if not s:
            continue
        if s["requests"] <= 0:
            problems.append(f"{phase}: no requests completed")
        if s["non2xx"] or s["socket_errors"]:
            problems.append(f"{phase}: {s['non2xx']} non-2xx answers, {s['socket_errors']} socket errors")
        if s.get("generate_outcomes", {}).get("accepted", 0) < s["requests"]:
            problems.append(f"{phase}: the service counted fewer accepted generates than wrk saw: {s.get('generate_outcomes')}")
    gs = [r for r in recs if r["phase"] == "generate_serve"]
    ga = [r for r in recs if r["phase"] == "generate_api"]
    if gs and not sum(r["job_outcomes"].get("sent", 0) for r in gs):
        problems.append("generate_serve: the worker sent no mail while generate ran")
    if ga and sum(r["sink_mails"] for r in ga):
        problems.append("generate_api: mails arrived although no worker runs")
    for phase in VERIFY_PHASES:
        s = sums.get(phase)
        if not s:
            continue
        if s["requests"] <= 0 or s["socket_errors"]:
            problems.append(f"{phase}: {s['requests']} requests, {s['socket_errors']} socket errors")
        mix = s.get("verify_outcomes", {})
        if mix.get("incorrect", 0) < s["requests"] or set(mix) - {"incorrect"}:
            problems.append(f"{phase}: expected only 'incorrect' outcomes, got {mix}")
        if s["non2xx"] != s["requests"]:
            problems.append(f"{phase}: {s['requests'] - s['non2xx']} answers were 2xx (a wrong code verified?)")
    for phase, n in [(p, args.verify_count) for p in PREPARE_PHASES] + [("e2e", args.e2e_count)]:
        for r in (r for r in recs if r["phase"] == phase):
            if not (r.get("all_arrived") and r.get("mails") == n and r.get("with_code") == n and r.get("ok") == n):
                problems.append(
                    f"{phase} run {r['rep']}: {r.get('ok')} of {n} accepted, {r.get('mails')} mails arrived, "
                    f"{r.get('with_code')} with a code"
                )
    for r in recs:
        if r["kind"] != "ceiling" and not (r["rss_mb"] > 0 and r["rss_idle_mb"] > 0):
            problems.append(f"{r['phase']} run {r['rep']}: no RSS reading")
        if r["kind"] != "ceiling" and not r["cpu_cores"]["service"] > 0:
            problems.append(f"{r['phase']} run {r['rep']}: no service CPU reading")
    return problems


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--raw", required=True)
    p.add_argument("--mode", default="full")
    p.add_argument("--run-id", required=True)
    p.add_argument("--machine", default="{}")
    p.add_argument("--commit", default="unknown")
    p.add_argument("--phases", default="")
    p.add_argument("--binary", default="")
    p.add_argument("--inherited", default="")
    p.add_argument("--elapsed-ms", default="0")
    p.add_argument("--settings", default="")
    p.add_argument("--e2e-count", type=int, default=0)
    p.add_argument("--verify-count", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--latest")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()

    with open(args.raw) as f:
        recs = [record(json.loads(line)) for line in f if line.strip()]
    ceil = {r["rep"]: r["rps"] for r in recs if r["kind"] == "ceiling"}
    ceil_start, ceil_end = ceil.get("start"), ceil.get("end")
    ceiling = statistics.mean([c for c in (ceil_start, ceil_end) if c]) if ceil else None
    sums = {}
    for phase in HTTP_PHASES + list(PREPARE_PHASES) + ["e2e"]:
        rs = [r for r in recs if r["phase"] == phase]
        if rs:
            sums[phase] = summarize(phase, rs, ceiling)
    for r in recs:
        main_key = "mails_per_s" if r["phase"] == "e2e" else "rps"
        if ceiling and r["kind"] != "ceiling" and r.get(main_key):
            r["ratio_to_ceiling"] = round(r[main_key] / ceiling, 3)

    print(table(args, recs, sums, ceil_start, ceil_end))

    if args.out:
        meta = {
            "kind": "run",
            "run_id": args.run_id,
            "mode": args.mode,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": args.commit,
            "phases": args.phases.strip(","),
            "binary": args.binary,
            "otp_env_from_caller": args.inherited,
            "machine": json.loads(args.machine),
            "settings": args.settings,
            "ceiling_rps": {"start": ceil_start, "end": ceil_end, "mean": ceiling},
            "elapsed_s": int(args.elapsed_ms) / 1000,
        }
        lines = [json.dumps(meta)] + [json.dumps(r) for r in recs] + [json.dumps(s) for s in sums.values()]
        with open(args.out, "a") as f:
            f.write("\n".join(lines) + "\n")
        if args.latest:
            with open(args.latest, "w") as f:
                f.write("\n".join(lines) + "\n")
        print(f"results: {args.out}" + (f" (and {args.latest})" if args.latest else ""))

    if args.smoke:
        problems = smoke_checks(recs, sums, args)
        if problems:
            print("bench smoke: FAILED", file=sys.stderr)
            for pr in problems:
                print("  - " + pr, file=sys.stderr)
            sys.exit(1)
        print(f"bench smoke: ok (all phases ran; {int(args.elapsed_ms) / 1000:.0f} s)")


if __name__ == "__main__":
    main()
