#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Overhead benchmark (issues 7, 14 and 16): what reporting costs a guest
that keeps allocating and freeing memory, with no reporting, with QEMU's
free-page-reporting (the kernel's page reporting, for reference) and with
freehint (module, agent, freehintd discarding).

  bench/overhead.py [--mem MIB] [--seconds S] [--reps N] [--size MIB]
                    [--gap S] [--workloads LIST] [--defer MIB_S]
                    [--accel tcg|kvm]

The guest runs bench/guest/churn.c (allocate --size MiB, write every
page, free it, round after round) as a sweep of workloads, one after
another in the same guest, --seconds each with --gap between them: full
speed (the first, 3 s after boot: the agent has not seen a churn yet),
rounds paced at half, once and one and a half times 64 MiB/s (the
agent's allocation-rate deferral when it was on by default, which it no
longer is; for 128 MiB rounds also one round per kernel reporting delay,
2 s), and bursts of 2 s at full
speed with 4 s idle (idle past the kernel's delay, back well within the
agent's headroom memory). Each configuration boots one guest per
repetition, the configurations taking turns (their order rotated each
repetition). Per workload and run: the guest's throughput, QEMU's and
freehintd's host CPU time per GiB churned, QEMU's page faults, and the
MiB discarded, measured on the host for every configuration (the guest
RAM memfd's allocated size, sampled every 100 ms, its decreases summed)
and, for freehint, also by freehintd's own count.

With the defaults (5 repetitions of 3 configurations, 5 workloads of
20 s, 5 s apart) it boots 15 guests of 145-150 s each (boot 15-20 s,
3 s, the workloads and their gaps, the stop): 36-38 minutes on a 2-core
TCG machine (estimate_seconds), and a minute or so to build the guest
image first.
"""
import argparse
import math
import os
import re
import sys
import time
from collections import namedtuple

import benchlib as b
from benchlib import cell

CONFIGS = ("none", "qemu-report", "freehint")
TARGET = 0.03
PERIOD = 0.1  # s between two samples of the guest RAM's backing
MIB = 1 << 20
# A workload during which freehintd discarded less than one block of the
# kernel's reporting order (2 MiB) did not show freehint at work.
REALLY_MIB = 2
# The kernel's page reporting runs about 2 s after a free (docs/kmod.md;
# PAGE_REPORTING_DELAY in mm/page_reporting.c).
KERNEL_DELAY_S = 2
# report-defer-rate's default from commit 2f41073 until bc437e2 turned it
# off in favour of the headroom: the agent of the runs issue 16 quotes.
FORMER_DEFER = 64
# Seconds of a guest besides its workloads, for the estimate: boot until
# "BENCH booted" (at most), the 3 s before the first workload, the stop.
BOOT_S, LEAD_S, STOP_S = 20, 3, 2

Workload = namedtuple("Workload", "spec kind rate busy idle")


# Pure parts (bench/test_overhead.py) -----------------------------------

def parse_workload(spec):
    """A workload of bench/guest/scenario.sh: "full", "paced:MIB_S" or
    "bursty:BUSY:IDLE" (seconds)."""
    parts = spec.split(":")
    try:
        if parts == ["full"]:
            return Workload(spec, "full", None, None, None)
        if parts[0] == "paced" and len(parts) == 2:
            rate = float(parts[1])
            if rate > 0:
                return Workload(spec, "paced", rate, None, None)
        if parts[0] == "bursty" and len(parts) == 3:
            busy, idle = float(parts[1]), float(parts[2])
            if busy > 0 and idle > 0:
                return Workload(spec, "bursty", None, busy, idle)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        "workload '%s': full, paced:MIB_S or bursty:BUSY:IDLE" % spec)


def parse_workloads(text):
    ws = [parse_workload(s) for s in text.split(",") if s]
    if not ws or len({w.spec for w in ws}) != len(ws):
        raise argparse.ArgumentTypeError(
            "workloads '%s': a list of distinct workloads" % text)
    return ws


def num(x):
    """A figure without trailing zeros: 64, 1.5."""
    return ("%.1f" % x).rstrip("0").rstrip(".")


def default_workloads(defer=FORMER_DEFER, delay=KERNEL_DELAY_S):
    """Full speed; paced at half, once and 1.5 times defer; bursts of
    delay s, idle twice the kernel's delay."""
    return ",".join(["full"] + ["paced:%s" % num(defer * k)
                                for k in (0.5, 1, 1.5)]
                    + ["bursty:%s:%s" % (num(delay), num(2 * delay))])


def describe(w):
    if w.kind == "full":
        return "full speed"
    if w.kind == "paced":
        return "paced %s MiB/s" % num(w.rate)
    return "bursty %s s on, %s s off" % (num(w.busy), num(w.idle))


def duration(w, secs, size):
    """How long churn runs w: a paced one its ceil(secs / period) whole
    rounds' slots, the others secs."""
    if w.kind != "paced":
        return float(secs)
    period = size / w.rate
    return math.ceil(secs / period - 1e-9) * period


def estimate_seconds(workloads, secs, size, gap, reps, configs=3):
    """The benchmark's time: every guest boots and runs every workload."""
    guest = BOOT_S + LEAD_S + STOP_S + sum(duration(w, secs, size) + gap
                                           for w in workloads)
    return configs * reps * guest


def parse_result(line):
    """churn's line: a dict of mib, secs, rate, busy, busy_rate, rounds
    and size; ValueError for anything else (churn's error)."""
    m = re.search(r"churn: (\d+) MiB in ([\d.]+) s: ([\d.]+) MiB/s, busy "
                  r"([\d.]+) s: ([\d.]+) MiB/s, (\d+) rounds of (\d+) MiB",
                  line)
    if not m:
        raise ValueError("not a churn result: %r" % line)
    return {"mib": int(m.group(1)), "secs": float(m.group(2)),
            "rate": float(m.group(3)), "busy": float(m.group(4)),
            "busy_rate": float(m.group(5)), "rounds": int(m.group(6)),
            "size": int(m.group(7))}


def segment_result(lines, spec):
    """The line churn printed for workload spec (without "BENCH "), None
    while it runs; RuntimeError when the guest went on without one."""
    started = False
    for ln in lines:
        ln = ln.rstrip()
        if not started:
            started = ln == "BENCH churn-start " + spec
            continue
        if ln.startswith("BENCH churn: "):
            return ln[len("BENCH "):]
        if ln.startswith(("BENCH churn-start ", "BENCH done",
                          "BENCH error")):
            raise RuntimeError("%s: no result from churn before '%s'"
                               % (spec, ln))
    return None


def discarded_mib(samples):
    """MiB discarded: the decreases of the backing's allocated bytes
    between samples, summed. A discard and a refault between two samples
    cancel, so this is a lower bound."""
    return sum(max(0, a - z) for a, z in zip(samples, samples[1:])) / MIB


def figures(line, qemu_cpu, daemon_cpu, faults, samples, fh_bytes):
    """One run of one workload: churn's line and the host's measures."""
    r = parse_result(line)
    cpu = qemu_cpu + (daemon_cpu or 0)
    r.update(cpu=cpu, qemu_cpu=qemu_cpu, daemon_cpu=daemon_cpu,
             cpu_gib=cpu * 1024 / r["mib"] if r["mib"] else None,
             faults=faults, kfaults=faults / 1000.0,
             discarded=discarded_mib(samples),
             fh_discarded=None if fh_bytes is None else fh_bytes / MIB)
    return r


# The figures of the table: key, header, format.
COLS = (("rate", "guest MiB/s", "%.0f"),
        ("busy_rate", "guest MiB/s while busy", "%.0f"),
        ("cpu_gib", "host CPU s per GiB", "%.2f"),
        ("kfaults", "QEMU faults (thousands)", "%.1f"),
        ("discarded", "MiB discarded (backing)", "%.0f"),
        ("fh_discarded", "MiB discarded (freehintd)", "%.0f"))


def summaries(res, workloads):
    """{spec: {configuration: b.summarise of its runs}}."""
    return {w.spec: {c: b.summarise(res[w.spec][c], [k for k, _, _ in COLS])
                     for c in CONFIGS} for w in workloads}


def med(sm, k):
    return sm[k]["med"] if sm.get(k) else None


def cost(s, cfg):
    """cfg's host CPU per GiB against none's, as a fraction (medians)."""
    a, z = med(s[cfg], "cpu_gib"), med(s["none"], "cpu_gib")
    return None if a is None or not z else a / z - 1


def overlap(a, z):
    return a["lo"] <= z["hi"] and z["lo"] <= a["hi"]


def below(sm, c1, c2, k):
    """Every run of c1 below every run of c2 in figure k: a difference
    the spread does not explain."""
    a, z = sm[c1].get(k), sm[c2].get(k)
    return bool(a and z and a["hi"] < z["lo"])


def apart(sums, workloads, k):
    """The workloads where freehint's runs are all below QEMU's reporting's
    in figure k, and those where they are all above."""
    return ([w for w in workloads
             if below(sums[w.spec], "freehint", "qemu-report", k)],
            [w for w in workloads
             if below(sums[w.spec], "qemu-report", "freehint", k)])


def pct(x):
    return "%+.1f%%" % (100 * x)


def table(sums, workloads):
    rows = []
    for w in workloads:
        for i, c in enumerate(CONFIGS):
            sm = sums[w.spec][c]
            k = cost(sums[w.spec], c)
            rows.append([describe(w) if i == 0 else "", c,
                         "%d/%d" % (sm["ok"], sm["runs"])]
                        + [cell(sm.get(key), f) for key, _, f in COLS[:3]]
                        + ["-" if k is None else pct(k)]
                        + [cell(sm.get(key), f) for key, _, f in COLS[3:]])
    return b.table(["workload", "reporting", "runs ok"]
                   + [h for _, h, _ in COLS[:3]] + ["cost vs none (CPU)"]
                   + [h for _, h, _ in COLS[3:]], rows)


def why_failed(sm):
    return sm["errors"][0] if sm["errors"] else "no run"


def verdict(w, s):
    """The target on workload w's medians: freehint's cost against none
    within TARGET, with QEMU's reporting's cost and what freehintd
    discarded meanwhile. The full-speed churn's is issue 14's target (the
    churn benchmark)."""
    fh, none, ref = s["freehint"], s["none"], s["qemu-report"]
    name = describe(w) + (" (issue 14's target)" if w.kind == "full"
                          else "")
    if not fh.get("cpu_gib"):
        return "- %s: **not measured**: freehint: %s." % (name,
                                                          why_failed(fh))
    if not none.get("cpu_gib"):
        return "- %s: **not measured**: the baseline (none) failed: %s." % (
            name, why_failed(none))
    k = cost(s, "freehint")
    out = "- %s: freehint's host CPU per GiB churned %s against none's " \
        "(medians of %d and %d runs; target: within %d%%): %s; the " \
        "runs' ranges %s" % (
            name, pct(k), fh["cpu_gib"]["n"], none["cpu_gib"]["n"],
            round(100 * TARGET), "met" if k <= TARGET else "**NOT MET**",
            "overlap" if overlap(fh["cpu_gib"], none["cpu_gib"])
            else "do not overlap")
    r = cost(s, "qemu-report")
    out += "; QEMU free-page-reporting %s" % (
        "not measured (%s)" % why_failed(ref) if r is None else pct(r))
    d, db = med(fh, "fh_discarded"), med(fh, "discarded")
    if d is None:
        out += "; what freehintd discarded is unknown."
    elif d < REALLY_MIB:
        out += "; freehintd discarded %.0f MiB during it (median), so " \
            "this does not show what discarding costs." % d
    else:
        out += "; freehintd discarded %.0f MiB during it (median; the " \
            "backing shows %.0f MiB)." % (d, db)
    return out


def verdicts(sums, workloads):
    """One verdict a workload, and a count when there are several."""
    out = [verdict(w, sums[w.spec]) for w in workloads]
    judged = [w for w in workloads if cost(sums[w.spec], "freehint")
              is not None]
    if len(judged) > 1:
        met = [w for w in judged if cost(sums[w.spec], "freehint") <= TARGET]
        ref = [w for w in judged if cost(sums[w.spec], "qemu-report")
               is not None and cost(sums[w.spec], "qemu-report") <= TARGET]
        out.append("- freehint within %d%% of none on %d of %d workloads, "
                   "QEMU free-page-reporting on %d." % (
                       round(100 * TARGET), len(met), len(judged), len(ref)))
    return out


def spread(sm, k):
    """Half the interquartile range of figure k, relative to its median."""
    st = sm.get(k)
    if not st or not st["med"]:
        return None
    return (st["q3"] - st["q1"]) / 2 / st["med"]


def reading(sums, workloads):
    """"Reading the figures", from the medians."""
    out = ["Reading the figures: freehint and QEMU's free-page-reporting "
           "ride on the same kernel page reporting. A page the host "
           "discarded costs the guest a host fault and a zeroed page when "
           "it writes there again (the faults column); QEMU's reporting "
           "discards what stays free past the kernel's wait, freehint "
           "keeps its headroom back and discards the rest."]
    noise = [(spread(sums[w.spec]["none"], "cpu_gib"), w) for w in workloads]
    noise = [(x, w) for x, w in noise if x is not None]
    if noise:
        x, w = max(noise, key=lambda t: t[0])
        out.append("Half the interquartile range of none's host CPU per "
                   "GiB is up to %.1f%% of its median (%s), %s the %d%% "
                   "margin of the target%s." % (
                       100 * x, describe(w),
                       "less than" if x < TARGET else "more than",
                       round(100 * TARGET),
                       "" if x < TARGET else ": a verdict within that "
                       "spread is weak either way; more repetitions "
                       "(`--reps`) narrow it"))
    both = [w for w in workloads
            if cost(sums[w.spec], "freehint") is not None
            and cost(sums[w.spec], "qemu-report") is not None]
    if both:
        cheaper, dearer = apart(sums, both, "cpu_gib")
        out.append("freehint's runs all cost less host CPU than all of "
                   "QEMU's reporting's on %d of %d workloads%s, and all "
                   "more on %d; on the others their ranges overlap." % (
                       len(cheaper), len(both), " (%s)" % ", ".join(
                           describe(w) for w in cheaper)
                       if 0 < len(cheaper) < len(both) else "",
                       len(dearer)))
    for cfg in ("qemu-report", "freehint"):
        ds = [(med(sums[w.spec][cfg], "discarded"), w) for w in workloads]
        ds = [(d, w) for d, w in ds if d is not None]
        if ds:
            d, w = max(ds, key=lambda t: t[0])
            out.append("%s discarded the most during %s (%.0f MiB on the "
                       "backing, median)." % (
                           "QEMU's reporting" if cfg == "qemu-report"
                           else "freehint", describe(w), d))
    faults = [w for w in both if sums[w.spec]["freehint"].get("kfaults")
              and sums[w.spec]["qemu-report"].get("kfaults")]
    if faults:
        fewer, more = apart(sums, faults, "kfaults")
        out.append("QEMU took fewer page faults in every run with freehint "
                   "than in any with its own reporting on %d of %d "
                   "workloads, more on %d; on the others the ranges "
                   "overlap." % (len(fewer), len(faults), len(more)))
    idle = [w for w in both if med(sums[w.spec]["freehint"], "fh_discarded")
            is not None and med(sums[w.spec]["freehint"], "fh_discarded")
            < REALLY_MIB]
    if idle:
        out.append("Where freehintd discarded next to nothing (%s), "
                   "freehint's cost against none is that of the agent and "
                   "freehintd running, not of discarding." % ", ".join(
                       describe(w) for w in idle))
    short = ["%s with %s" % (describe(w), c) for w in workloads
             if w.kind == "paced" for c in CONFIGS
             if sums[w.spec][c].get("rate")
             and sums[w.spec][c]["rate"]["lo"] < 0.95 * w.rate]
    if any(w.kind == "paced" for w in workloads):
        out.append("Paced runs more than 5%% short of their rate (the guest "
                   "could not keep up): %s." % (", ".join(short) or "none"))
    out.append("On a shared TCG machine the runs of one configuration "
               "differ from one boot to the next (see the load average "
               "above); the bracketed spreads show by how much.")
    return " ".join(out)


# The agent's thresholds ------------------------------------------------

def agent_thresholds(root=b.ROOT):
    """The agent's constants and defaults the workloads are weighed
    against, read from its sources; None for one not found."""
    text = ""
    for f in ("agent.h", "report.c", "agent.conf"):
        try:
            with open(os.path.join(root, "guest-agent", f)) as fh:
                text += fh.read() + "\n"
        except OSError:
            pass

    def define(name, rx=r"(\d+)\b"):
        m = re.search(r"^#define %s\s+%s" % (name, rx), text, re.M)
        return int(m.group(1)) if m else None
    m = re.search(r"^#?report-defer-rate (\d+)$", text, re.M)
    return {"sample_ms": define("HEADROOM_SAMPLE_MS"),
            "seconds": define("HEADROOM_SECONDS"),
            "skip": define("HEADROOM_SKIP"),
            "rearm_mib": define("REPORT_REARM_MIN_BYTES",
                                r"\((\d+)ULL << 20\)"),
            "defer": int(m.group(1)) if m else None}


def thresholds_text(th, workloads, size):
    """Why these workloads: the agent's thresholds, as its sources say
    them at this commit, and where each workload falls."""
    if None in th.values():
        return ("The agent's thresholds could not be read from "
                "guest-agent/ (%s)." % ", ".join(
                    k for k, v in th.items() if v is None))
    out = ["Why these workloads: the agent's allocation-rate deferral "
           "(`report-defer-rate`) is %s by default "
           "(guest-agent/agent.conf)%s; it was %d MiB/s from commit "
           "2f41073 until bc437e2 (issue 16's runs, in which the agent "
           "deferred every batch)." % (
               "off (0)" if th["defer"] == 0 else "%d MiB/s" % th["defer"],
               ", so no allocation rate makes it give a batch back"
               if th["defer"] == 0 else "", FORMER_DEFER)]
    every = th["seconds"] / th["skip"] if th["skip"] else float("inf")
    out.append("What decides on a churning guest now is the headroom "
               "(docs/agent.md, \"Busy memory stays put\"): free memory "
               "is sampled every %d ms, a dip counts when free memory "
               "falls and comes back within a second, and the agent keeps "
               "unreported the %s deepest of the last %d seconds' dips; it "
               "rearms the kernel's reporting once %d MiB are spare beyond "
               "that. Rounds of %d MiB are kept once %d of them fall within "
               "%d s (a round that straddles two of the agent's one-second "
               "windows shows as a shallower dip): rounds at most %s s "
               "apart, %.1f MiB/s and up." % (
                   th["sample_ms"], ordinal(th["skip"] + 1), th["seconds"],
                   th["rearm_mib"], size, th["skip"] + 1, th["seconds"],
                   num(every), size * th["skip"] / th["seconds"]))
    paced = [w for w in workloads if w.kind == "paced"]
    if paced:
        below = [w for w in paced if size / w.rate > every]
        out.append("%s The paced rates are %s times the deferral's "
                   "former %d MiB/s. The kernel reports free memory about "
                   "%d s after a free (docs/kmod.md); paced rounds of %d "
                   "MiB start "
                   "every %s, so the churn's freed memory lies free for "
                   "about that long, less the round itself, before the "
                   "next round takes it again." % (
                       "Of the paced workloads %s %s below that rate (the "
                       "agent keeps nothing for them)." % (
                           ", ".join(describe(w) for w in below),
                           "is" if len(below) == 1 else "are")
                       if below else "Every paced workload is above that "
                       "rate.", ", ".join(
                           ("%.2f" % (w.rate / FORMER_DEFER)).rstrip(
                               "0").rstrip(".") for w in paced),
                       FORMER_DEFER, KERNEL_DELAY_S, size,
                       ", ".join("%s s (%s)" % (num(size / w.rate),
                                                describe(w)) for w in paced)))
    for w in workloads:
        if w.kind == "bursty":
            holds = w.idle < th["seconds"] and th["seconds"] * w.busy / (
                w.busy + w.idle) >= th["skip"] + 1
            out.append("%s idles %s the kernel's %d s; its bursts put dips "
                       "in about %s of every %s seconds, so the headroom "
                       "%s the idle." % (
                           describe(w).capitalize(),
                           "past" if w.idle > KERNEL_DELAY_S else "within",
                           KERNEL_DELAY_S, num(w.busy), num(w.busy + w.idle),
                           "holds across" if holds else "lapses in"))
    return " ".join(out)


def ordinal(n):
    return {1: "first", 2: "second", 3: "third"}.get(n, "%dth" % n)


# Running --------------------------------------------------------------

class ChurnFailed(Exception):
    """churn printed an error instead of its result: the guest goes on."""


def daemon_cpu(vm):
    return vm.daemon_cpu_seconds() if vm.daemon else None


def reclaimed(vm):
    return vm.fh_status().get("reclaimed_bytes", 0) if vm.daemon else None


def measure(vm, w, args):
    """Workload w in vm, from its "churn-start" line to churn's result."""
    vm.wait(r"^BENCH churn-start %s$" % re.escape(w.spec), args.gap + 120)
    t0 = time.monotonic()
    samples = [vm.backing_bytes()]
    qcpu0, dcpu0, flt0 = vm.cpu_seconds(), daemon_cpu(vm), \
        b.tree_faults(vm.pid)
    rec0 = reclaimed(vm)
    end = t0 + duration(w, args.seconds, args.size) + 120
    while True:
        line = segment_result(vm.lines(), w.spec)
        if line is not None:
            break
        if time.monotonic() > end or vm.proc.poll() is not None:
            raise RuntimeError("%s: no result from churn (see %s)"
                               % (w.spec, vm.log))
        time.sleep(PERIOD - (time.monotonic() - t0) % PERIOD)
        samples.append(vm.backing_bytes())
    qcpu = vm.cpu_seconds() - qcpu0
    dcpu = daemon_cpu(vm) - dcpu0 if vm.daemon else None
    faults = b.tree_faults(vm.pid) - flt0
    samples.append(vm.backing_bytes())
    fh = reclaimed(vm) - rec0 if vm.daemon else None
    try:
        return figures(line, qcpu, dcpu, faults, samples, fh)
    except ValueError:
        raise ChurnFailed("%s: %s" % (w.spec, line))


def run_guest(cfg, args, rep):
    """One guest of cfg: every workload in turn; {spec: run or error}."""
    append = "bench.churn=%d bench.churn_mib=%d bench.churn_gap=%d " \
        "bench.churn_runs=%s" % (args.seconds, args.size, args.gap,
                                 ",".join(w.spec for w in args.workloads))
    if cfg == "freehint" and args.defer is not None:
        append += " bench.defer=%d" % args.defer
    out, fatal = {}, None
    vm = b.Vm("churn-%s-%d" % (cfg, rep), "churn", mem_mib=args.mem,
              balloon="report" if cfg == "qemu-report" else None,
              freehint=cfg == "freehint", append=append, accel=args.accel)
    try:
        if cfg == "freehint":
            vm.start_freehintd()
        vm.wait(r"^BENCH booted", 240)
        for w in args.workloads:
            if fatal:
                out[w.spec] = {"error": "not run: " + fatal}
                continue
            try:
                out[w.spec] = measure(vm, w, args)
            except ChurnFailed as e:
                out[w.spec] = {"error": "churn failed: %s" % e}
            except Exception as e:  # noqa: BLE001: the guest is lost
                out[w.spec] = {"error": str(e)}
                fatal = "%s failed before" % w.spec
    except Exception as e:  # noqa: BLE001: one failed guest
        for w in args.workloads:
            out.setdefault(w.spec, {"error": str(e)})
    finally:
        vm.stop()
    return out


def show(cfg, rep, w, r):
    if "error" in r:
        return "%s #%d %s: failed: %s" % (cfg, rep, w.spec, r["error"])
    return ("%s #%d %s: %.0f MiB/s (%.0f while busy), %.2f host CPU s per "
            "GiB, %d faults, %.0f MiB discarded%s" % (
                cfg, rep, w.spec, r["rate"], r["busy_rate"], r["cpu_gib"],
                r["faults"], r["discarded"],
                "" if r["fh_discarded"] is None
                else " (freehintd: %.0f MiB)" % r["fh_discarded"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mem", type=int, default=512)
    ap.add_argument("--seconds", type=int, default=20,
                    help="each workload's time (a paced one runs whole "
                    "rounds)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--size", type=int, default=128,
                    help="MiB allocated, written and freed by a round")
    ap.add_argument("--gap", type=int, default=5,
                    help="seconds between two workloads: past the "
                    "kernel's reporting delay, so that what one frees at "
                    "its end is not discarded in the next one's window")
    ap.add_argument("--workloads", type=parse_workloads,
                    default=parse_workloads(default_workloads()),
                    help="comma-separated: full, paced:MIB_S, "
                    "bursty:BUSY:IDLE (default %s)" % default_workloads())
    ap.add_argument("--defer", type=int, default=None,
                    help="the agent's --report-defer-rate in MiB/s "
                    "(default: the agent's own)")
    b.add_accel(ap)
    args = ap.parse_args()
    # The code measured is what the guest image is built from, now.
    args.prov = b.Provenance(args.accel)
    args.commit = b.commit()
    print("overhead: about %.0f minutes" % (estimate_seconds(
        args.workloads, args.seconds, args.size, args.gap, args.reps) / 60))
    b.build_initrd()
    why_not = b.have_freehint()
    res = {w.spec: {c: [] for c in CONFIGS} for w in args.workloads}
    for rep in range(args.reps):
        # Take turns, the order rotated: none leads one repetition in 3.
        k = rep % len(CONFIGS)
        for cfg in CONFIGS[k:] + CONFIGS[:k]:
            if cfg == "freehint" and why_not:
                out = {w.spec: {"error": "freehint " + why_not}
                       for w in args.workloads}
            else:
                out = run_guest(cfg, args, rep)
            for w in args.workloads:
                res[w.spec][cfg].append(out[w.spec])
                print(show(cfg, rep, w, out[w.spec]))
    report(args, res)


def command(args):
    cmd = "python3 bench/overhead.py --mem %d --seconds %d --reps %d " \
        "--size %d --gap %d --workloads %s" % (
            args.mem, args.seconds, args.reps, args.size, args.gap,
            ",".join(w.spec for w in args.workloads))
    if args.defer is not None:
        cmd += " --defer %d" % args.defer
    return cmd


def report(args, res):
    sums = summaries(res, args.workloads)
    tab = table(sums, args.workloads)
    verdict_lines = verdicts(sums, args.workloads)
    print(tab)
    print("\n".join(verdict_lines))
    ws = "".join("\n- %s: `churn %s%d %d`" % (
        describe(w), {"full": "", "paced": "-r %s " % num(w.rate or 0),
                      "bursty": "-b %s -i %s " % (num(w.busy or 0),
                                                 num(w.idle or 0))}[w.kind],
        args.seconds, args.size) for w in args.workloads)
    doc = ["## Overhead", "",
           "Command: `bench/run.sh overhead` (runs `%s`), at commit %s."
           % (command(args), args.commit), "",
           "Machine: %s. Guest: %d MiB on a shared memfd, 1 vCPU, running "
           "`churn` (bench/guest/churn.c: allocate %d MiB, write every "
           "page, free it, round after round), as these workloads, one "
           "after another in the same guest, %d s each (a paced one runs "
           "whole rounds), %d s apart, the first 3 s after boot:%s"
           % (b.machine(args.accel), args.mem, args.size, args.seconds,
              args.gap, ws), "",
           "Each configuration boots one guest per repetition, %d "
           "repetitions; the configurations take turns, their order "
           "rotated each repetition. A workload starts with the agent's "
           "headroom and the kernel's reported memory as the one before "
           "left them (the first one finds the agent fresh from boot)%s."
           % (args.reps, ", and freehint's agent runs with "
              "`--report-defer-rate %d`" % args.defer
              if args.defer is not None else ""), "",
           thresholds_text(agent_thresholds(), args.workloads, args.size),
           "",
           "Measured per workload and run, from the guest's start line to "
           "churn's result: the guest's throughput (MiB churned over the "
           "workload's time; for paced and bursty workloads the pacing "
           "sets it, and the throughput while busy, MiB over the time "
           "spent in rounds, shows a slowdown); the host CPU time of QEMU "
           "and freehintd per GiB churned, and its cost against none "
           "(ratio of the medians: the target is judged on it, as it "
           "counts the work done for the guest whatever else runs on the "
           "machine); QEMU's page faults, minor and major "
           "(`/proc/PID/stat`); the MiB discarded, measured the same way "
           "for every configuration: the allocated size (`st_blocks`) of "
           "the memfd of the guest's RAM, sampled every %d ms, its "
           "decreases summed (a discard and a refault between two "
           "samples cancel: a lower bound), and for freehint also "
           "freehintd's own count (`reclaimed_bytes`: every range it "
           "discarded, whether the host had memory there or not). Each "
           "cell is the median of the runs that completed, with [the "
           "interquartile range] from 5 runs on, (lowest-highest) below "
           "that." % round(PERIOD * 1000), "",
           tab, "", "Targets:", ""] + verdict_lines + \
        ["", reading(sums, args.workloads)]
    for w in args.workloads:
        for c in CONFIGS:
            for e in sums[w.spec][c]["errors"]:
                print("%s %s: failed run: %s" % (w.spec, c, e))
    b.write_doc("40-overhead", "\n".join(doc), args.prov)


if __name__ == "__main__":
    sys.exit(main())
