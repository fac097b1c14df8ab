#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Overhead benchmark (issue 7): the guest's own throughput on a
memory-churning workload (allocate 128 MiB, touch every page, free, in a
loop) with no reporting, with QEMU's free-page-reporting (the kernel's page
reporting, for reference) and with freehint (module, agent, freehintd
discarding). Runs alternate between configurations to spread drift.

  bench/overhead.py [--mem MIB] [--seconds S] [--reps N]
"""
import argparse
import statistics
import sys

import benchlib as b

CONFIGS = ("none", "qemu-report", "freehint")
TARGET = 0.03


def run_one(cfg, args, rep):
    vm = b.Vm("churn-%s-%d" % (cfg, rep), "churn", mem_mib=args.mem,
              balloon="report" if cfg == "qemu-report" else None,
              freehint=cfg == "freehint",
              append="bench.churn=%d" % args.seconds)
    try:
        if cfg == "freehint":
            vm.start_freehintd()
        line = vm.wait(r"^BENCH churn: ", 120 + 2 * args.seconds)
        return float(line.split(": ")[-1].split()[0])
    finally:
        vm.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mem", type=int, default=512)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    b.build_initrd()
    why_not = b.have_freehint()
    runs = {c: [] for c in CONFIGS}
    errors = {}
    for rep in range(args.reps):
        for cfg in CONFIGS:
            if cfg == "freehint" and why_not:
                errors[cfg] = "freehint " + why_not
                continue
            try:
                runs[cfg].append(run_one(cfg, args, rep))
                print("%s #%d: %.1f MiB/s" % (cfg, rep, runs[cfg][-1]))
            except Exception as e:  # noqa: BLE001: one failed run
                errors[cfg] = str(e)
    report(args, runs, errors)


def report(args, runs, errors):
    med = {c: statistics.median(v) for c, v in runs.items() if v}
    base = med.get("none")
    rows = []
    for c in CONFIGS:
        if c not in med:
            rows.append([c, "not measured", "-", "-", "-"])
            continue
        cost = "-" if base is None else "%+.1f%%" % (100 * (1 - med[c] / base))
        rows.append([c, " ".join("%.1f" % v for v in runs[c]),
                     "%.1f" % med[c], b.ratio(med[c], base), cost])
    tab = b.table(["reporting", "runs MiB/s", "median MiB/s",
                   "vs none", "cost"], rows)
    if "freehint" not in med:
        verdict = ["- **Overhead target not measured**: %s."
                   % errors.get("freehint", "no run")]
    elif base is None:
        verdict = ["- **Overhead target not measured**: the baseline "
                   "failed: %s." % errors.get("none")]
    else:
        cost = 1 - med["freehint"] / base
        verdict = ["- freehint costs %.1f%% of the churn throughput "
                   "(target: within %d%%): %s." % (
                       100 * cost, 100 * TARGET,
                       "met" if cost <= TARGET else "**NOT MET**")]
    for c, e in sorted(errors.items()):
        if c != "freehint" or "freehint" in med:
            verdict.append("- %s failed: %s." % (c, e))
    print(tab)
    print("\n".join(verdict))
    doc = ["## Overhead", "",
           "Command: `bench/run.sh overhead` (runs `python3 "
           "bench/overhead.py --mem %d --seconds %d --reps %d`)."
           % (args.mem, args.seconds, args.reps), "",
           "Machine: %s. Guest: %d MiB on a shared memfd, 1 vCPU, running "
           "`churn %d 128` (allocate 128 MiB, write every page, free, for "
           "%d s) 3 s after boot. Each configuration boots a fresh guest; "
           "runs alternate between configurations. The kernel's page "
           "reporting (QEMU free-page-reporting) is the reference cost."
           % (b.machine(), args.mem, args.seconds, args.seconds),
           "", tab, "", "Target:", ""] + verdict
    b.write_doc("40-overhead", "\n".join(doc))


if __name__ == "__main__":
    sys.exit(main())
