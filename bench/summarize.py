#!/usr/bin/env python3
"""Helpers of bench/run (stdlib only).

  summarize.py merge OUT.json ROUND.json...   merge hyperfine exports of several rounds (same command
                                              names) into one export: all times pooled, stats recomputed
  summarize.py table OUT_DIR                  print the markdown summary from OUT_DIR/facts.json and the
                                              hyperfine exports cache-hit.json, refresh.json, flyte-iap.json
"""

import json
import os
import statistics
import sys


def merge(out_path, round_paths):
    pooled = {}
    order = []
    for path in round_paths:
        with open(path) as f:
            for result in json.load(f)["results"]:
                name = result["command"]
                if name not in pooled:
                    pooled[name] = {"times": [], "exit_codes": [], "user": 0.0, "system": 0.0}
                    order.append(name)
                entry = pooled[name]
                n = len(result["times"])
                entry["times"] += result["times"]
                entry["exit_codes"] += result.get("exit_codes") or []
                # hyperfine exports only mean user/system times: weight them by the round's run count.
                entry["user"] += result["user"] * n
                entry["system"] += result["system"] * n
    results = []
    for name in order:
        entry = pooled[name]
        times = entry["times"]
        n = len(times)
        results.append(
            {
                "command": name,
                "mean": statistics.fmean(times),
                "stddev": statistics.stdev(times) if n > 1 else 0.0,
                "median": statistics.median(times),
                "user": entry["user"] / n,
                "system": entry["system"] / n,
                "min": min(times),
                "max": max(times),
                "times": times,
                "exit_codes": entry["exit_codes"],
                "rounds": len(round_paths),
            }
        )
    with open(out_path, "w") as f:
        json.dump({"results": results}, f, indent=1)


def load(out_dir, name):
    path = os.path.join(out_dir, name)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {r["command"]: r for r in json.load(f)["results"]}


def ms(r):
    return f"{r['mean'] * 1e3:.2f} ± {r['stddev'] * 1e3:.2f} ms (median {r['median'] * 1e3:.2f}, min {r['min'] * 1e3:.2f})"


def met(flag):
    return "yes" if flag else "**no**"


def table(out_dir):
    with open(os.path.join(out_dir, "facts.json")) as f:
        facts = json.load(f)
    hit = load(out_dir, "cache-hit.json")
    iap, base, true = hit["iap-token"], hit["baseline"], hit["/bin/true"]
    refresh = load(out_dir, "refresh.json")["refresh"]
    flyte = load(out_dir, "flyte-iap.json").get("flyte-iap") if facts["flyte_iap"] else None
    size = facts["binary_size"]
    rss = facts["rss_kb"]
    clean = facts["clean_build_secs"]

    def cpu(r):
        return (r["user"] + r["system"]) * 1e3

    ratio_mean = iap["mean"] / base["mean"]
    ratio_median = iap["median"] / base["median"]
    quiet = facts["quiet"]
    rows = [
        ("machine", f"{facts['nproc']} cores, {facts['model']}, Linux {facts['kernel']}", "", ""),
        ("date, revision", f"{facts['date']}, {facts['revision']} (binary sha256 {facts['binary_sha']}…)", "", ""),
        (
            "load",
            f"loadavg {facts['load_before']} before, {facts['load_after']} after; "
            f"waited {quiet['waited_secs']} s for an idle CPU, {quiet['busy_starts']} of {quiet['checks']} "
            f"measurements started busy",
            "",
            "",
        ),
        ("stripped release binary", f"{size:,} bytes ({size / 1048576:.2f} MiB)", "< 5 MB", met(size < 5_000_000)),
        (
            "clean release build (`cargo build --release --locked`, empty target dir)",
            f"{clean:.1f} s" if clean is not None else "not measured (use --clean-build)",
            "< 150 s on 2 cores",
            met(clean < 150) if clean is not None else "",
        ),
        (f"cache hit, iap-token ({len(iap['times'])} runs in {iap.get('rounds', 1)} rounds)", ms(iap), "", ""),
        ("cache hit, minimal baseline (bench/baseline)", ms(base), "", ""),
        ("process floor, /bin/true", ms(true), "", ""),
        (
            "ratio iap-token / baseline",
            f"{ratio_mean:.2f}x mean, {ratio_median:.2f}x median "
            f"({(iap['median'] - base['median']) * 1e3:+.2f} ms; CPU user+sys {cpu(iap):.2f} vs {cpu(base):.2f} ms)",
            "≤ 1.3x",
            met(ratio_median <= 1.3) + (" (median)" if (ratio_median <= 1.3) != (ratio_mean <= 1.3) else ""),
        ),
    ]
    if flyte:
        ratio = flyte["mean"] / iap["mean"]
        ratio_med = flyte["median"] / iap["median"]
        rows += [
            (f"flyte-iap {facts['flyte_iap_version']}, cached token ({len(flyte['times'])} runs)", ms(flyte), "", ""),
            (
                "ratio flyte-iap / iap-token",
                f"{ratio:,.0f}x mean, {ratio_med:,.0f}x median",
                "≥ 500x",
                met(ratio_med >= 500) + (" (median)" if (ratio_med >= 500) != (ratio >= 500) else ""),
            ),
        ]
    else:
        rows.append(("flyte-iap", "not measured (--no-flyte-iap)", "", ""))
    rows += [
        (
            "peak RSS of a cache hit (`/usr/bin/time -f %M`, max of 5)",
            f"{rss:,} KB (baseline {facts['rss_baseline_kb']:,} KB)",
            "< 5 MB",
            met(rss < 5000),
        ),
        (
            "refresh: token requests",
            f"{facts['refresh_requests']} (and {facts['refresh_run_requests']} in {facts['refresh_runs']} timed+warmup runs)",
            "1",
            met(facts["refresh_requests"] == 1 and facts["refresh_run_requests"] == facts["refresh_runs"]),
        ),
        (f"refresh: wall time ({len(refresh['times'])} runs, fake Google on 127.0.0.1)", ms(refresh), "", ""),
    ]
    print("| measure | value | target | met |")
    print("|---|---|---|---|")
    for name, value, target, ok in rows:
        print(f"| {name} | {value} | {target} | {ok} |")
    if quiet["busy_starts"]:
        print()
        print(
            f"**Warning:** {quiet['busy_starts']} measurement(s) started while other processes kept the CPUs busy "
            "(--max-wait used up): timings and ratios are unreliable; rerun on an idle machine."
        )


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "merge":
        merge(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
