#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Reclaim benchmark (issues 7 and 14): QEMU's RssShmem sampled every
100 ms after the guest frees memory, for no reporting, QEMU's
virtio-balloon free-page-reporting and freehint (agent + module, page
reporting, freehintd discarding). Two guests: an idle one that dirties and
frees about 70% of its RAM, and a busy one (issue 14) that frees 280 MiB
while a checked 40 MiB churn keeps allocating and freeing beside it,
repeated --reps times.

  bench/reclaim.py [--mem MIB] [--window SECONDS] [--reps N]
"""
import argparse
import os
import statistics
import sys
import time

import benchlib as b

CONFIGS = ("none", "qemu-report", "freehint")
# freehint-headroom0: the agent with --report-headroom 0, which reports
# everything, to show what the headroom keeps back on a busy guest.
BUSY = ("busy-qemu-report", "busy-freehint", "busy-freehint-headroom0")
PERIOD = 0.1


def run_one(cfg, args, rep=0):
    busy = cfg.startswith("busy-")
    kind = cfg[5:] if busy else cfg
    vm = b.Vm("reclaim-%s-%d" % (cfg, rep), "busy" if busy else "reclaim",
              mem_mib=args.mem,
              balloon="report" if kind == "qemu-report" else None,
              freehint=kind.startswith("freehint"),
              append="bench.headroom=0" if kind == "freehint-headroom0"
              else "", accel=args.accel)
    try:
        if kind.startswith("freehint"):
            vm.start_freehintd()
        vm.wait(r"^BENCH booted", 240)
        if args.window > 10:
            raise RuntimeError("the guest stays up 12 s after the free")
        samples, t_free, cpu_free = [], None, None
        t0 = time.monotonic()
        while True:
            now = time.monotonic() - t0
            samples.append((now, vm.status_kib("RssShmem")))
            if t_free is None and any(ln.startswith("BENCH freed")
                                      for ln in vm.lines()):
                t_free, cpu_free = now, vm.cpu_seconds()
                dcpu_free = vm.daemon_cpu_seconds() if vm.daemon else 0
            if t_free is not None and now - t_free >= args.window:
                break
            if now > 240:
                raise RuntimeError("the guest never freed its memory")
            time.sleep(PERIOD - (time.monotonic() - t0 - now) % PERIOD)
        qemu_cpu = vm.cpu_seconds() - cpu_free
        daemon_cpu = (vm.daemon_cpu_seconds() - dcpu_free
                      if vm.daemon else None)
        vm.wait(r"^BENCH done", 120)
        ticks = vm.value("cpu_ticks")
        r = analyse(samples, t_free, (ticks[2] - ticks[1]) / 100.0, qemu_cpu)
        r["daemon_cpu"] = daemon_cpu
        if busy:
            churn = vm.wait(r"^BENCH fhchurn: ", 5)
            if not churn.endswith(" 0 bad pages"):
                raise RuntimeError("the churn lost memory: " + churn)
            r["churn"] = churn[len("BENCH "):]
        return r
    except Exception as e:  # noqa: BLE001: one failed run is a row
        return {"error": str(e)}
    finally:
        vm.stop()


def analyse(samples, t_free, guest_cpu, qemu_cpu):
    curve = [(t - t_free, kib / 1024.0) for t, kib in samples]
    at_free = max(m for t, m in curve if t <= 0)
    after = [(t, m) for t, m in curve if t >= 0]
    footprint = min(m for t, m in after)
    drop = at_free - footprint
    t90 = None
    if drop > 1:
        t90 = next(t for t, m in after if m <= at_free - 0.9 * drop)
    return {"curve": curve, "at_free": at_free, "footprint": footprint,
            "t90": t90, "guest_cpu": guest_cpu, "qemu_cpu": qemu_cpu}


def busy_summary(runs):
    """Median and spread of the busy runs of one configuration."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return None
    drops = [r["at_free"] - r["footprint"] for r in ok]
    at2 = [r["at_free"] - min(m for t, m in r["curve"] if 0 <= t <= 2.0)
           for r in ok]
    at4 = [r["at_free"] - min(m for t, m in r["curve"] if 0 <= t <= 4.0)
           for r in ok]
    return {"n": len(ok), "drops": drops, "drop": statistics.median(drops),
            "at2": statistics.median(at2), "at4": statistics.median(at4),
            "t90s": [r["t90"] for r in ok]}


def busy_verdicts(sums):
    fh, ref = sums.get("busy-freehint"), sums.get("busy-qemu-report")
    if fh is None or ref is None:
        return ["- **Busy-guest target not measured**: a configuration "
                "failed every run."]
    ok = fh["at4"] >= ref["at2"] * 0.99
    return ["- busy guest: freehint gave back %.0f MiB within 4 s against "
            "QEMU free-page-reporting's %.0f MiB within 2 s (medians): %s."
            % (fh["at4"], ref["at2"], "met" if ok else "**NOT MET**"),
            "- busy guest, whole window: freehint %.0f MiB, QEMU "
            "free-page-reporting %.0f MiB (medians): %s."
            % (fh["drop"], ref["drop"],
               "met" if fh["drop"] >= ref["drop"] * 0.99
               else "**NOT MET**")]


def busy_report(args, busy):
    sums = {c: busy_summary(busy[c]) for c in BUSY}
    rows = []
    for c in BUSY:
        sm = sums[c]
        errs = [r["error"] for r in busy[c] if "error" in r]
        if sm is None:
            rows.append([c[5:], "0/%d" % len(busy[c])] + ["-"] * 5)
            continue
        rows.append([c[5:], "%d/%d" % (sm["n"], len(busy[c])),
                     " ".join("%.0f" % d for d in sm["drops"]),
                     "%.0f" % sm["drop"],
                     "%.0f-%.0f" % (min(sm["drops"]), max(sm["drops"])),
                     "%.0f / %.0f" % (sm["at2"], sm["at4"]),
                     " ".join(fmt_t(t) for t in sm["t90s"])])
        for e in errs:
            print("%s: failed run: %s" % (c, e))
    tab = b.table(["reporting", "runs ok", "given back MiB, per run",
                   "median MiB", "spread MiB",
                   "median within 2 s / 4 s MiB", "time to 90% s, per run"],
                  rows)
    return tab, busy_verdicts(sums), sums


def verdicts(res):
    fh, ref = res["freehint"], res["qemu-report"]
    if "error" in fh:
        return ["- **Reclaim target not measured**: %s." % fh["error"]]
    if "error" in ref:
        return ["- **Reference failed**: %s." % ref["error"]]
    out = []
    ok = fh["footprint"] <= ref["footprint"] * 1.01
    out.append("- footprint %.0f MiB vs QEMU free-page-reporting %.0f MiB: "
               "%s." % (fh["footprint"], ref["footprint"],
                        "met" if ok else "**NOT MET**"))
    ok = fh["t90"] is not None and ref["t90"] is not None and \
        fh["t90"] <= ref["t90"] + 0.2
    out.append("- time to 90%% %s s vs %s s: %s." % (
        fmt_t(fh["t90"]), fmt_t(ref["t90"]), "met" if ok else "**NOT MET**"))
    return out


WHY = """Reading the figures: the kernel's page reporting works in passes, 2 s
after a large free, each reporting about a sixteenth of every free list
(and at least one batch), so the memory comes back in steps about 2 s
apart, for QEMU's reporting and freehint alike; which step reaches 90%
depends on when the first pass lands, and moves the time by 2 s from one
run to the next. freehint's agent sends what leaves its headroom of free
memory unreported (docs/agent.md, "Busy memory stays put"): on the idle
guest the headroom is nil (one burst is not a churn), so every batch goes
whole. A freehint batch is out for a host round trip, and memory freed
next to it meanwhile merges with it when the kernel puts it back, which
asks for no new pass: that part comes when the agent rearms the kernel's
reporting, a second after the last batch, plus the kernel's 2 s."""

BUSY_WHY = """Reading the busy figures: both mechanisms report only free
blocks of the kernel's reporting order (2 MiB), so what the churn keeps in
pieces smaller than that comes back to neither; "given back" is RssShmem
at the free less the lowest RssShmem in the window. freehint keeps a
headroom of free memory unreported, sized from the dips in free memory the
churn makes (the headroom0 row reports everything, as QEMU does), so it
can give back up to the headroom less than QEMU's reporting; in exchange
the churn does not fault on discarded memory (Overhead)."""


def fmt_t(t):
    return "never" if t is None else "%.1f" % t


def report(args, res, busy):
    rows = []
    ref = res["qemu-report"]
    for cfg in CONFIGS:
        r = res[cfg]
        if "error" in r:
            rows.append([cfg, "not measured"] + ["-"] * 7)
            continue
        rows.append([cfg, "%.0f" % r["at_free"], "%.0f" % r["footprint"],
                     fmt_t(r["t90"]), "%.2f" % r["guest_cpu"],
                     "%.2f" % r["qemu_cpu"],
                     "-" if r["daemon_cpu"] is None
                     else "%.2f" % r["daemon_cpu"],
                     b.ratio(r["footprint"], ref.get("footprint")),
                     b.ratio(r["t90"], ref.get("t90"))])
    hdr = ["reporting", "RssShmem at free MiB", "footprint MiB",
           "time to 90% s", "guest CPU s", "QEMU CPU s", "freehintd CPU s",
           "footprint vs qemu-report", "t90 vs qemu-report"]
    tab = b.table(hdr, rows)
    verdict = verdicts(res)
    print(tab)
    print("\n".join(verdict))
    btab, bverdict, sums = busy_report(args, busy)
    print(btab)
    print("\n".join(bverdict))
    plot = plot_curves(res)
    bplot = plot_busy(busy)
    doc = ["## Reclaim", "",
           "Command: `bench/run.sh reclaim` (runs `python3 bench/reclaim.py "
           "--mem %d --window %d --reps %d`), at commit %s."
           % (args.mem, args.window, args.reps, args.commit), "",
           "Machine: %s. Guest: %d MiB on a shared memfd, 1 vCPU. The guest "
           "dirties 70%% of its RAM and frees it; QEMU's `RssShmem` is "
           "sampled every 100 ms for %d s after the free. Footprint: the "
           "lowest RssShmem reached; time to 90%%: from the free until 90%% "
           "of the drop; guest CPU: the guest's non-idle CPU time (from "
           "`/proc/stat`) over the window; QEMU CPU and freehintd CPU: those "
           "processes' over the window."
           % (b.machine(args.accel), args.mem, args.window), "", tab, "",
           "Targets:", ""] + verdict + ["", WHY]
    if plot:
        doc += ["", "![RssShmem after the free](%s)" % plot]
    doc += ["", "### A busy guest", "",
            "The same guest runs `fhfill 280 12`, which dirties 280 MiB, "
            "and once it has, `fhchurn 40`: round after round over a 40 MiB "
            "buffer, in 2 MiB pieces (huge pages, with THP set to madvise), "
            "it checks the stamp the last round left in each page, gives "
            "the piece back (MADV_DONTNEED), allocates it again "
            "(MADV_POPULATE_WRITE) and stamps it. About 12 s later "
            "`fhfill` frees its 280 MiB while the churn goes on. %d runs per "
            "configuration, each on a fresh guest; every run's churn "
            "checked all its pages (a run that lost one would be a failed "
            "run)." % args.reps, "", btab, "", "Targets:", ""] + bverdict + \
        ["", BUSY_WHY]
    if bplot:
        doc += ["", "![RssShmem after the free, busy guest](%s)" % bplot]
    b.write_doc("30-reclaim", "\n".join(doc), args.prov)


def plot_busy(busy):
    """The first successful run of each busy configuration."""
    runs = [(cfg[5:], next((r for r in busy[cfg] if "curve" in r), None))
            for cfg in BUSY]
    return plot([(n, r["curve"]) for n, r in runs if r is not None],
                "30-reclaim-busy.png", "Reclaim from a busy guest",
                "seconds after the guest freed 280 MiB (a 40 MiB churn "
                "runs on)")


def plot_curves(res):
    return plot([(c, res[c]["curve"]) for c in CONFIGS
                 if "curve" in res[c]],
                "30-reclaim.png",
                "Reclaim: host memory of the guest after a free",
                "seconds after the guest freed its memory")


def plot(curves, png, title, xlabel):
    """RssShmem curves, one line each, into docs/bench/png."""
    plots = []
    for name, curve in curves:
        dat = os.path.join(b.OUT, "%s-%s.dat" % (png[:-4], name))
        with open(dat, "w") as f:
            for t, m in curve:
                f.write("%.2f %.1f\n" % (t, m))
        plots.append("'%s' using 1:2 with lines lw 2 title '%s'"
                     % (dat, name))
    if not plots:
        return None
    ok = b.gnuplot("""
set terminal pngcairo size 800,450 noenhanced
set output '%s'
set xlabel '%s'
set ylabel 'QEMU RssShmem (MiB)'
set title '%s'
set xrange [-3:*]
set yrange [0:*]
set key top right
plot %s
""" % (os.path.join(b.DOCS, png), xlabel, title, ", ".join(plots)))
    return png if ok else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mem", type=int, default=512)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    b.add_accel(ap)
    args = ap.parse_args()
    # The code measured is what the guest image is built from, now.
    args.prov = b.Provenance(args.accel)
    args.commit = b.commit()
    b.build_initrd()
    why_not = b.have_freehint()
    res = {}
    for cfg in CONFIGS:
        if cfg.startswith("freehint") and why_not:
            res[cfg] = {"error": "freehint " + why_not}
            continue
        res[cfg] = run_one(cfg, args)
        print("%s: %s" % (cfg, {k: v for k, v in res[cfg].items()
                                if k != "curve"}))
    busy = {c: [] for c in BUSY}
    # Alternate the configurations, to spread the machine's drift.
    for rep in range(args.reps):
        for cfg in BUSY:
            if "freehint" in cfg and why_not:
                busy[cfg].append({"error": "freehint " + why_not})
                continue
            busy[cfg].append(run_one(cfg, args, rep))
            print("%s #%d: %s" % (cfg, rep, {
                k: v for k, v in busy[cfg][-1].items() if k != "curve"}))
    report(args, res, busy)


if __name__ == "__main__":
    sys.exit(main())
