#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Reclaim benchmark (issues 7 and 14): QEMU's RssShmem sampled every
100 ms after the guest frees memory, for no reporting, QEMU's
virtio-balloon free-page-reporting and freehint (agent + module, page
reporting, freehintd discarding). Two guests: an idle one that dirties and
frees about 70% of its RAM, then dirties it again (the cost of faulting
discarded memory back in), and a busy one (issue 14) that frees 280 MiB
while a checked 40 MiB churn keeps allocating and freeing beside it. Each
configuration runs --reps times, on a fresh guest each, the
configurations alternating.

  bench/reclaim.py [--mem MIB] [--window SECONDS] [--reps N] [--accel A]
"""
import argparse
import os
import sys
import time

import benchlib as b

CONFIGS = ("none", "qemu-report", "freehint")
# freehint-headroom0: the agent with --report-headroom 0, which reports
# everything, to show what the headroom keeps back on a busy guest.
BUSY = ("busy-qemu-report", "busy-freehint", "busy-freehint-headroom0")
PERIOD = 0.1
INF = float("inf")


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
        if not busy:
            # A figure the guest did not print loses only itself: the
            # dirtyings' times, and its memory at the window's end
            # (guest/scenario.sh, memstate).
            for k, line, unit in (("fill_ms", "fill_ms", 1),
                                  ("refill_ms", "refill_ms", 1),
                                  ("used", "used_kib", 1024.0),
                                  ("free_big", "free_big_kib", 1024.0),
                                  ("agent_mem", "agent_kib", 1)):
                try:
                    r[k] = vm.value(line)[-1] / unit
                except RuntimeError:
                    r[k] = None
        else:
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
    return {"n": len(ok), "drops": drops, "drop": b.stats(drops)["med"],
            "at2": b.stats(at2)["med"], "at4": b.stats(at4)["med"],
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


# The idle runs' figures: key, column, format.
IDLE = (("at_free", "RssShmem at free MiB", "%.0f"),
        ("footprint", "footprint MiB", "%.0f"),
        ("t90", "time to 90% s", "%.1f"),
        ("guest_cpu", "guest CPU s", "%.2f"),
        ("qemu_cpu", "QEMU CPU s", "%.2f"),
        ("daemon_cpu", "freehintd CPU s", "%.2f"),
        ("used", "guest used MiB", "%.0f"),
        ("free_big", "guest free in 2 MiB+ blocks MiB", "%.0f"),
        ("agent_mem", "agent memory KiB", "%.0f"),
        ("fill_ms", "first dirtying ms", "%.0f"),
        ("refill_ms", "dirtying again ms", "%.0f"))


def idle_summary(runs):
    """Each figure's stats over the runs that completed (b.summarise). A
    run whose memory never came back ranks last in the time to 90%
    (infinite), so that the median counts it."""
    sm = b.summarise(runs, [k for k, _, _ in IDLE if k != "t90"])
    sm["t90s"] = [r["t90"] for r in runs if "error" not in r]
    if sm["t90s"]:
        sm["t90"] = b.stats([INF if t is None else t for t in sm["t90s"]])
    return sm


def idle_cell(st, k, fmt):
    """A cell of the idle table; an infinite time to 90% reads "never"."""
    if k != "t90" or st is None:
        return b.cell(st, fmt)
    cell = b.cell(st, fmt)
    return cell.replace("inf", "never")


def med(sm, k):
    return sm[k]["med"] if sm.get(k) else None


def verdicts(sums):
    fh, ref = sums["freehint"], sums["qemu-report"]
    if not fh["ok"]:
        return ["- **Reclaim target not measured**: every freehint run "
                "failed."]
    if not ref["ok"]:
        return ["- **Reference failed** in every run."]
    out = []
    f, r = med(fh, "footprint"), med(ref, "footprint")
    out.append("- footprint %.0f MiB vs QEMU free-page-reporting %.0f MiB "
               "(medians): %s." % (f, r, "met" if f <= r * 1.01
                                   else "**NOT MET**"))
    # Issue 14: no more than one kernel reporting pass (2 s) later.
    f, r = med(fh, "t90"), med(ref, "t90")
    never = fh["t90s"].count(None)
    ok = f is not None and r is not None and f <= r + 2.0
    out.append("- time to 90%%: freehint %s s vs QEMU free-page-reporting "
               "%s s (medians%s); the target is at most one kernel "
               "reporting pass (2 s) later: %s." % (
                   fmt_t(f), fmt_t(r),
                   "; %d freehint runs never reached 90%%" % never
                   if never else "", "met" if ok else "**NOT MET**"))
    return out


def fault_back(sums):
    """The cost of faulting discarded memory back in, in words."""
    parts = []
    for c in CONFIGS:
        sm = sums[c]
        if sm.get("refill_ms") and sm.get("fill_ms"):
            parts.append("%s %.0f ms (first %.0f ms)" % (
                c, med(sm, "refill_ms"), med(sm, "fill_ms")))
    if not parts:
        return []
    return ["- dirtying the freed memory again, 11 s after the free "
            "(medians): " + ", ".join(parts) + "."]


WHY = """Reading the figures: the kernel's page reporting works in passes, 2 s
after a large free, each reporting about a sixteenth of every free list
(and at least one batch), so the memory comes back in steps about 2 s
apart, for QEMU's reporting and freehint alike; which step reaches 90%
depends on when the first pass lands. freehint's agent sends what leaves
its headroom of free memory unreported (docs/agent.md, "Busy memory stays
put"): on the idle guest the headroom is nil (one burst is not a churn),
so every batch goes whole."""

# Said only when the medians show it.
WHY_LATE = """ A freehint batch is out for a host round trip, and
memory freed next to it meanwhile merges with it when the kernel puts it
back, which asks for no new pass: that part comes when the agent rearms
the kernel's reporting, a second after the last batch, plus the kernel's
2 s."""
WHY_SAME = """ Here freehint's batches reached 90% on the same kernel
pass as QEMU's (medians within half a second): a host round trip per
batch did not hold the pass back."""


def why(sums):
    """WHY, with the sentences the medians bear out."""
    f, r = med(sums["freehint"], "t90"), med(sums["qemu-report"], "t90")
    pace = ""
    if f is not None and r is not None:
        pace = WHY_SAME if abs(f - r) <= 0.5 else WHY_LATE
    return WHY + pace + why_footprint(sums)


def why_footprint(sums):
    """The footprints' difference set against the guests' memory at the
    window's end (medians): in use, and free in blocks page reporting
    takes."""
    fh, ref = sums["freehint"], sums["qemu-report"]
    vals = [med(fh, k) for k in ("footprint", "used", "free_big")] + \
        [med(ref, k) for k in ("footprint", "used", "free_big")]
    if None in vals:
        return ""
    ff, fu, fb, rf, ru, rb = vals
    agent = med(fh, "agent_mem")
    out = (" At the window's end freehint's guest used %.0f MiB%s and had "
           "%.0f MiB free in blocks of 2 MiB or more, the order both "
           "report; QEMU's used %.0f MiB and had %.0f MiB so (medians). "
           "freehint's footprint was %.0f MiB %s."
           % (fu, " (its agent %.0f KiB: anonymous memory and page tables, "
              "which reporting done in the kernel does not need)" % agent
              if agent is not None else "", fb, ru, rb, abs(ff - rf),
              "larger" if ff >= rf else "smaller"))
    if ff > rf and fb < rb and abs((ff - rf) - (rb - fb)) <= 2:
        out += (" freehint's guest had fewer such blocks, by about that "
                "difference: more of its memory was in use or free in "
                "pieces under 2 MiB, which no reporting takes.")
    return out


BUSY_WHY = """Reading the busy figures: both mechanisms report only free
blocks of the kernel's reporting order (2 MiB), so what the churn keeps in
pieces smaller than that comes back to neither; "given back" is RssShmem
at the free less the lowest RssShmem in the window. freehint keeps a
headroom of free memory unreported, sized from the dips in free memory the
churn makes (the headroom0 row reports everything, as QEMU does), so it
can give back up to the headroom less than QEMU's reporting; in exchange
the churn does not fault on discarded memory (Overhead)."""


def fmt_t(t):
    return "never" if t is None or t == INF else "%.1f" % t


def report(args, res, busy):
    sums = {c: idle_summary(res[c]) for c in CONFIGS}
    rows = []
    for c in CONFIGS:
        sm = sums[c]
        rows.append([c, "%d/%d" % (sm["ok"], sm["runs"])]
                    + [idle_cell(sm.get(k), k, f) for k, _, f in IDLE]
                    + [" ".join(fmt_t(t) for t in sm["t90s"]) or "-"])
        for e in sm["errors"]:
            print("%s: failed run: %s" % (c, e))
    hdr = ["reporting", "runs ok"] + [h for _, h, _ in IDLE] + \
        ["time to 90% s, per run"]
    tab = b.table(hdr, rows)
    verdict = verdicts(sums) + fault_back(sums)
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
           "sampled every 100 ms for %d s after the free; 11 s after the "
           "free the guest dirties the same amount again. %d runs per "
           "configuration, each on a fresh guest, the configurations "
           "taking turns. Each cell is the median of the runs that "
           "completed, with [the interquartile range] from 5 runs on, "
           "(lowest-highest) below that. Footprint: the lowest RssShmem "
           "reached; time to 90%%: from the free until 90%% of the drop "
           "(a run whose memory did not come back shows \"never\" and has "
           "no time); guest CPU: the guest's non-idle CPU time (from "
           "`/proc/stat`) over the window; QEMU CPU and freehintd CPU: those "
           "processes' over the window; guest free in 2 MiB+ blocks: the "
           "guest's free memory in blocks of order 9 and up (what page "
           "reporting takes, from `/proc/buddyinfo`) at the window's end; "
           "guest used: its MemTotal less MemFree then; agent memory: "
           "freehint-agent's `RssAnon` and `VmPTE` then; "
           "dirtying: the guest's time to write "
           "70%% of its RAM, first after boot, then again after the window "
           "(onto memory the host discarded, which the host must fault "
           "back in, or onto memory it kept)."
           % (b.machine(args.accel), args.mem, args.window, args.reps), "",
           tab, "",
           "Targets:", ""] + verdict + ["", why(sums)]
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
    return plot([(c[5:], busy[c]) for c in BUSY],
                "30-reclaim-busy.png", "Reclaim from a busy guest",
                "seconds after the guest freed 280 MiB (a 40 MiB churn "
                "runs on)")


def plot_curves(res):
    return plot([(c, res[c]) for c in CONFIGS],
                "30-reclaim.png",
                "Reclaim: host memory of the guest after a free",
                "seconds after the guest freed its memory")


def band(runs, step=PERIOD):
    """The runs' curves on one time grid (step s from the free): per
    point, the median, lowest and highest RssShmem of the runs sampled
    there; a point fewer than half the runs reach is left out."""
    bins = {}
    curves = [r["curve"] for r in runs if "curve" in r]
    for curve in curves:
        seen = {}
        for t, m in curve:
            seen.setdefault(round(t / step), m)
        for k, m in seen.items():
            bins.setdefault(k, []).append(m)
    out = []
    for k in sorted(bins):
        ms = bins[k]
        if len(ms) * 2 >= len(curves):
            st = b.stats(ms)
            out.append((k * step, st["med"], st["lo"], st["hi"]))
    return out


def plot(series, png, title, xlabel):
    """Each configuration's median RssShmem over its runs, a line, with
    the lowest-highest band around it, into docs/bench/png."""
    plots = []
    for i, (name, runs) in enumerate(series):
        pts = band(runs)
        if not pts:
            continue
        dat = os.path.join(b.OUT, "%s-%s.dat" % (png[:-4], name))
        with open(dat, "w") as f:
            for t, m, lo, hi in pts:
                f.write("%.2f %.1f %.1f %.1f\n" % (t, m, lo, hi))
        plots.append("'%s' using 1:3:4 with filledcurves fs transparent "
                     "solid 0.2 lc %d notitle" % (dat, i + 1))
        plots.append("'%s' using 1:2 with lines lw 2 lc %d title '%s "
                     "(median, band: lowest-highest of %d runs)'"
                     % (dat, i + 1, name, sum("curve" in r for r in runs)))
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
    ap.add_argument("--reps", type=int, default=10)
    b.add_accel(ap)
    args = ap.parse_args()
    # The code measured is what the guest image is built from, now.
    args.prov = b.Provenance(args.accel)
    args.commit = b.commit()
    b.build_initrd()
    why_not = b.have_freehint()
    res = {c: [] for c in CONFIGS}
    # Alternate the configurations, to spread the machine's drift.
    for rep in range(args.reps):
        for cfg in CONFIGS:
            if cfg.startswith("freehint") and why_not:
                res[cfg].append({"error": "freehint " + why_not})
                continue
            res[cfg].append(run_one(cfg, args, rep))
            print("%s #%d: %s" % (cfg, rep, {
                k: v for k, v in res[cfg][-1].items() if k != "curve"}))
    busy = {c: [] for c in BUSY}
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
