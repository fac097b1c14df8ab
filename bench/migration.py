#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Migration benchmark: a real live migration over TCP to a destination
QEMU on this machine, with no hinting, QEMU's virtio-balloon reporting
and hinting, and freehint, the guest's memory checked on the destination.

  bench/migration.py [--runs N] [--mem MIB] [--bandwidth 1g|10g|unlimited]
                     [--workload idle|busy|fragmented] [--busy-rate MIB_S]
                     [--frag-mib MIB]
                     [--accel tcg|kvm] [--settle S] [--configs A,B,...]
                     [--section NAME]

Each run boots a fresh guest that fills --check-mib of memory with a
pattern (bench/guest/memcheck.c), dirties 60% of its RAM and frees it
(fragmented: writes --frag-mib and frees every other 32 KiB of it), then
waits --settle seconds (every configuration the same; freehint's
wait starts once its agent is connected). The destination is started
with -incoming tcp:127.0.0.1:PORT; once the migration completed, the
benchmark asks the guest, now on the destination, to check every word of
its pattern. Rows are medians of --runs, with the spread. A run with
--configs prints its table and leaves docs/ alone.
"""
import argparse
import os
import re
import socket
import sys
import threading
import time

import benchlib as b
from benchlib import cell, summarise
from qmp import migrate_wait

# The section a run with the defaults writes (bench/bench.d/20-migration.sh).
SECTION = "20-migration"

# name: (virtio-balloon of QEMU, freehint: None, "report", "manual", "auto")
CONFIGS = {
    "none": (None, None),
    "qemu-report": ("report", None),
    "qemu-hint": ("hint", None),
    "qemu-hint+report": ("hint+report", None),
    "freehint-report": (None, "report"),
    "freehint-manual": (None, "manual"),
    "freehint-auto": (None, "auto"),
}
# Bytes a second (QMP max-bandwidth). "unlimited": far above what a
# migration on one machine reaches (QEMU has no "off").
BANDWIDTHS = {"1g": 10**9 // 8, "10g": 10**10 // 8, "unlimited": 1 << 40}
REFS = ("none", "qemu-hint", "qemu-hint+report")
CRASH = re.compile(r"BUG:|Oops|Kernel panic|general protection|corruption")
FULL = ("freehint-manual", "freehint-auto")

# Figures of one run, in table order: key, header, format.
SENT = [("used", "pages used", "%d"), ("normal", "ram.normal", "%d"),
        ("duplicate", "ram.duplicate", "%d"),
        ("transferred", "MiB transferred", "%.1f"),
        ("held_mib", "MiB held", "%d")]
TIMES = [("total_ms", "total ms", "%d"), ("pass_ms", "hint pass ms", "%d"),
         ("setup_ms", "setup ms", "%d"), ("downtime_ms", "downtime ms", "%d"),
         ("rss_before", "source RssShmem before MiB", "%d"),
         ("rss_peak", "source peak RssShmem MiB", "%d"),
         ("cpu_src", "source QEMU CPU s", "%.2f"),
         ("cpu_dst", "destination QEMU CPU s", "%.2f"),
         ("cpu_fhd", "freehintd CPU s", "%.2f")]

WHY = """Reading the figures:

- Every configuration runs the same guest through the same steps and
  waits; only the reporting and hinting differ. Reporting (QEMU's
  `free-page-reporting` and freehint's, which both ride on the kernel's
  page reporting) discards free memory before the migration, so
  "source RssShmem before" is lower in those rows and QEMU reads holes
  as zero pages. freehint-report has no hint pass (`--hint-min-order 20`:
  no free block is that large, so freehintd asks for none);
  freehint-manual runs `freehintctl hint` first and its "total ms"
  includes that pass; freehint-auto is the migration alone, with
  freehintd's defaults. On QEMU's MIGRATION event freehintd weighs the
  pass (docs/hostd.md, "When the pass pays"). When the pass pays at the
  bandwidth in force, freehintd holds the migration's bandwidth down
  until the pass is over, and "hint pass ms" is inside "total ms". When
  it does not pay, QEMU is left alone and "hint pass ms" and "MiB held"
  are "-".
- "total ms", "setup ms" and "downtime ms" are QEMU's `total-time`,
  `setup-time` and `downtime` (freehint-manual adds its pass);
  `ram.normal` counts pages sent whole, `ram.duplicate` zero pages sent
  as a few bytes. CPU times are user plus system time of each process
  from the start of the migration (of the pass, for freehint-manual) to
  its end; the destination's from its start.
- "checked" counts runs whose guest, on the destination, found every
  word of its patterned memory intact.
- Under TCG, QEMU 7.2 loses guest writes during a live migration
  (docs/kmod.md, "Live migration"): whatever the configuration, a
  destination guest may then crash or find its pattern changed. Such
  runs are listed under the tables and left out of the figures.
- On a shared machine under TCG the times move from run to run (see the
  load average above); the bracketed spread shows by how much, and a
  verdict whose ranges overlap is not a clear difference."""


# Pure parts (bench/test_migration.py) ------------------------------------

def parse_bandwidth(text):
    """Bytes a second for --bandwidth: 1g, 10g (Gbit/s) or unlimited."""
    try:
        return BANDWIDTHS[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(
            "bandwidth '%s': one of %s" % (text, ", ".join(BANDWIDTHS)))


def parse_configs(text):
    cfgs = [c for c in text.split(",") if c]
    bad = [c for c in cfgs if c not in CONFIGS]
    if bad or not cfgs:
        raise argparse.ArgumentTypeError(
            "configs '%s': a list of %s" % (text, ", ".join(CONFIGS)))
    return cfgs


def parse_memcheck(line):
    """The destination's verdict from a "BENCH memcheck ..." line: a dict
    with ok (bool), and the dirty rate achieved or the first bad word."""
    m = re.search(r"BENCH memcheck ok mib=(\d+) written_mib=(\d+) "
                  r"seconds=([\d.]+)", line)
    if m:
        secs = float(m.group(3))
        return {"ok": True, "mib": int(m.group(1)),
                "rate": int(m.group(2)) / secs if secs > 0 else 0.0}
    m = re.search(r"BENCH memcheck bad (.*)", line)
    if m:
        return {"ok": False, "why": m.group(1).strip()}
    raise ValueError("not a memcheck verdict: %r" % line)


def tables(res, cfgs):
    """The two Markdown tables: what was sent, then time and cost."""
    sent, times = [], []
    for c in cfgs:
        r = res[c]
        sent.append([c, "%d/%d" % (r["ok"], r["runs"])]
                    + [cell(r.get(k), f) for k, _, f in SENT])
        times.append([c] + [cell(r.get(k), f) for k, _, f in TIMES])
    return (b.table(["configuration", "runs checked"]
                    + [h for _, h, _ in SENT], sent),
            b.table(["configuration"] + [h for _, h, _ in TIMES], times))


def num(x):
    """A figure without trailing zeros: 50, 12.5."""
    return ("%.1f" % x).rstrip("0").rstrip(".")


def verdicts(res):
    """Full freehint against each reference, on medians, for bytes sent
    and total time; says when the runs' ranges overlap."""
    out = []
    for fh in FULL:
        for ref in REFS:
            f, r = res.get(fh), res.get(ref)
            if not f or not r:
                continue
            for key, what, unit in (("transferred", "sent", "MiB"),
                                    ("total_ms", "took", "ms")):
                if key not in f or key not in r:
                    # The reason of the side that has no figure.
                    gone = r if key in f else f
                    out.append("- %s vs %s, %s: not measured (%s: %s)." % (
                        fh, ref, what, ref if gone is r else fh,
                        gone["errors"][0] if gone["errors"] else "no run"))
                    continue
                a, z = f[key], r[key]
                word = "less" if a["med"] < z["med"] else "not less"
                overlap = a["lo"] <= z["hi"] and z["lo"] <= a["hi"]
                out.append("- %s %s %s %s, %s %s %s (medians of %d and %d "
                           "runs): %s%s." % (
                               fh, what, num(a["med"]), unit, ref,
                               num(z["med"]), unit, a["n"], z["n"],
                               "**less**" if word == "less" else word,
                               "; the runs' ranges overlap" if overlap
                               else ""))
    return out


# Running ------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_agent(vm, timeout=120):
    """Until the agent is welcomed (it has sent its first stats): a hint
    pass asked for before that would be refused."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = vm.fh_status()
            if v.get("connected") and v.get("guest_free_bytes", 0) > 0:
                return
        except RuntimeError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the agent did not connect")


def pass_from_log(vm, timeout=30):
    """(ms, MiB held) of the last hint pass freehintd started on the
    migration, from its log line "hint pass N over after MS ms (...), M
    MiB held"; None when it started none (it logs "no hint pass: why")."""
    rx = re.compile(r"hint pass \d+ over after (\d+) ms.*, (\d+) MiB held")
    end = time.monotonic() + timeout
    while True:
        with open(os.path.join(vm.dir, "freehintd.log")) as f:
            text = f.read()
        m = rx.findall(text)
        if m:
            return int(m[-1][0]), int(m[-1][1])
        if "no hint pass: " in text:
            return None
        if time.monotonic() > end:
            return None
        time.sleep(0.1)


class RssPeak(threading.Thread):
    """The largest RssShmem of a QEMU while it migrates, every 50 ms."""

    def __init__(self, vm):
        super().__init__(daemon=True)
        self.vm, self.peak, self.stop = vm, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.vm.status_kib("RssShmem"))
            self.stop.wait(0.05)

    def done(self):
        self.stop.set()
        self.join()
        return self.peak >> 10


def crash(lines):
    """The first line of a guest kernel's crash report, or None."""
    return next((ln.strip() for ln in lines if CRASH.search(ln)), None)


def dest_gone(dst):
    """Why the destination QEMU is gone: its guest kernel's crash when
    the console shows one (a panic powers the guest off)."""
    oops = crash(dst.lines())
    if oops is not None:
        return "the guest kernel crashed: " + oops
    return "the destination QEMU exited, no crash on its console"


def check_destination(dst, timeout=180):
    """Asks the guest on the destination to check its memory; its verdict
    (a guest kernel that crashed is a failed check)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(dst.bench_sock)
    except OSError:  # QEMU gone with its socket
        s.close()
        return {"ok": False, "why": dest_gone(dst)}
    line, err = None, None
    try:
        s.sendall(b"check\n")
        # A crash ends the wait too: the guest will not answer then.
        line = dst.wait(r"^BENCH memcheck (ok|bad)|" + CRASH.pattern,
                        timeout)
    except RuntimeError as e:  # no answer, or QEMU gone (a panic)
        err = e
    finally:
        s.close()
    oops = crash(dst.lines())
    if oops is not None:
        return {"ok": False, "why": "the guest kernel crashed: " + oops}
    if err is not None:
        raise err
    return parse_memcheck(line)


def run_one(cfg, args, rep):
    """One source, one destination, one migration: the run's figures, or
    {"error": why}."""
    balloon, fh = CONFIGS[cfg]
    name = "mig-%s-%d" % (cfg.replace("+", "-"), rep)
    append = "bench.rate=%g bench.check_mib=%d bench.frag=%d" % (
        args.rate, args.check_mib, args.frag)
    port = free_port()
    kw = dict(mem_mib=args.mem, balloon=balloon, freehint=fh is not None,
              append=append, accel=args.accel, bench_port=True)
    src = b.Vm(name, "migrate", **kw)
    dst = b.Vm(name + "-dst", "migrate",
               incoming="tcp:127.0.0.1:%d" % port, **kw)
    try:
        if fh:
            src.start_freehintd(["--hint-min-order", "20"]
                                if fh == "report" else [])
        src.wait(r"^BENCH ready", 300)
        free_kib = src.value("free_kib")[-1]
        if fh:
            wait_agent(src)
        time.sleep(args.settle)  # the same wait for every configuration
        cpu = [src.cpu_seconds(), src.daemon and src.daemon_cpu_seconds()]
        t0 = time.monotonic()
        pass_ms = None
        if fh == "manual":
            secs, held = b.freehint_hint(src)
            pass_ms = int(secs * 1000)
        rss_before = src.status_kib("RssShmem") >> 10
        peak = RssPeak(src)
        peak.start()
        q = src.qmp()
        q.cmd("migrate-set-parameters", {"max-bandwidth": args.bandwidth})
        st = migrate_wait(q, "tcp:127.0.0.1:%d" % port, args.timeout)
        rss_peak = peak.done()
        if st.get("status") != "completed":
            return {"error": "migration %s: %s" % (
                st.get("status"), st.get("error-desc", ""))}
        try:
            cpu_dst = dst.cpu_seconds()
        except OSError:  # it exited once the guest was there: a crash
            return {"error": "memory on the destination: " + dest_gone(dst)}
        run = {"used": args.mem * 256 - free_kib // 4,
               "normal": st["ram"]["normal"],
               "duplicate": st["ram"]["duplicate"],
               "transferred": st["ram"]["transferred"] / 2**20,
               "total_ms": st["total-time"] + (pass_ms or 0),
               "setup_ms": st.get("setup-time"),
               "downtime_ms": st.get("downtime"),
               "rss_before": rss_before, "rss_peak": rss_peak,
               "cpu_src": src.cpu_seconds() - cpu[0],
               "cpu_dst": cpu_dst,
               "cpu_fhd": src.daemon_cpu_seconds() - cpu[1]
               if fh else None,
               "held_mib": None, "pass_ms": pass_ms,
               "wall_s": time.monotonic() - t0}
        if fh == "manual":
            run["held_mib"] = held >> 20
        elif fh:
            # freehintd's own pass on the MIGRATION event, inside total-time.
            run["pass_ms"], run["held_mib"] = pass_from_log(src) or (None,
                                                                     None)
        verdict = check_destination(dst)
        if not verdict["ok"]:
            return {"error": "memory on the destination: " + verdict["why"]}
        run["dirty_rate"] = verdict["rate"]
        return run
    except Exception as e:  # noqa: BLE001: one failed run is counted
        return {"error": str(e)}
    finally:
        for vm in (src, dst):
            vm.stop()


def plot(res, cfgs, title, section):
    """docs/bench/SECTION.png: memory sent whole and total time side by
    side, median bars with the lowest-highest range; its name, or None
    without gnuplot or figures."""
    rows = [(c, res[c]) for c in cfgs
            if "normal" in res[c] and "total_ms" in res[c]]
    if not rows:
        return None
    dat = os.path.join(b.OUT, section + ".dat")
    with open(dat, "w") as f:
        for i, (c, r) in enumerate(rows):
            n, t = r["normal"], r["total_ms"]
            f.write("%d %s %.1f %.1f %.1f %.2f %.2f %.2f\n" % (
                i, c, n["med"] / 256, n["lo"] / 256, n["hi"] / 256,
                t["med"] / 1000, t["lo"] / 1000, t["hi"] / 1000))
    png = section + ".png"
    panel = """set ylabel '%s'
plot '{dat}' using 1:{m}:xtic(2) with boxes notitle, \\
  '' using 1:{m}:{lo}:{hi} with yerrorbars pt 0 lc rgb 'black' notitle
"""
    ok = b.gnuplot(("""
set terminal pngcairo size 1000,450 noenhanced
set output '{png}'
set multiplot layout 1,2 title '%s'
set style fill solid 0.6 border -1
set boxwidth 0.6
set xtics rotate by -30
set yrange [0:*]
""" % title + panel % "MiB sent whole (ram.normal)"
        + panel.replace("{m}", "{t}").replace("{lo}", "{tlo}")
        .replace("{hi}", "{thi}") % "total time, s"
        + "unset multiplot\n").format(
            png=os.path.join(b.DOCS, png), dat=dat, m=3, lo=4, hi=5, t=6,
            tlo=7, thi=8))
    return png if ok else None


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mem", type=int, default=512, help="guest MiB")
    ap.add_argument("--bandwidth", type=parse_bandwidth, default="unlimited",
                    help="max-bandwidth: 1g, 10g (Gbit/s) or unlimited")
    ap.add_argument("--workload", choices=("idle", "busy", "fragmented"),
                    default="idle")
    ap.add_argument("--busy-rate", type=float, default=32,
                    help="MiB/s the busy guest rewrites (default 32)")
    ap.add_argument("--frag-mib", type=int, default=320,
                    help="MiB the fragmented guest writes, then frees "
                    "every other 32 KiB of (default 320)")
    ap.add_argument("--check-mib", type=int, default=64,
                    help="guest memory checked on the destination")
    ap.add_argument("--settle", type=int, default=10,
                    help="seconds every guest waits before migrating")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--configs", type=parse_configs,
                    default=",".join(CONFIGS))
    ap.add_argument("--section", default=SECTION,
                    help="the docs/bench/NAME.md (and .png) it writes; "
                    "default " + SECTION)
    b.add_accel(ap)
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs: at least 1")
    args.bandwidth_name = next(k for k, v in BANDWIDTHS.items()
                               if v == args.bandwidth)
    args.rate = args.busy_rate if args.workload == "busy" else 0
    args.frag = args.frag_mib if args.workload == "fragmented" else 0
    # What is built now is what is measured.
    args.prov = b.Provenance(args.accel)
    b.build_initrd()
    why_not = b.have_freehint()
    runs = {c: [] for c in args.configs}
    # Configurations alternate within each round, to spread the drift of
    # a shared machine over all of them.
    for rep in range(args.runs):
        for cfg in args.configs:
            if CONFIGS[cfg][1] and why_not:
                runs[cfg].append({"error": "freehint " + why_not})
                continue
            t = time.monotonic()
            runs[cfg].append(run_one(cfg, args, rep))
            print("%s run %d: %s (%.0f s)" % (cfg, rep + 1, runs[cfg][-1],
                                             time.monotonic() - t),
                  flush=True)
    res = {c: summarise(runs[c]) for c in args.configs}
    sent, times = tables(res, args.configs)
    verdict = verdicts(res)
    print(sent, times, "\n".join(verdict), sep="\n\n")
    if args.configs != list(CONFIGS):
        print("(a partial run: docs/ not written)")
        return 0
    report(args, res, sent, times, verdict)
    return 0


def section_head(args):
    """The section's heading and the command that writes it again."""
    opts = "--runs %d --mem %d --bandwidth %s --workload %s --accel %s" % (
        args.runs, args.mem, args.bandwidth_name, args.workload, args.accel)
    if args.workload == "fragmented":
        opts += " --frag-mib %d" % args.frag_mib
    if args.section == SECTION:
        return "## Migration", "`bench/run.sh migration %s`" % opts
    return ("## Migration: %d MiB guest, %s, %s" % (
                args.mem, args.bandwidth_name, args.workload),
            "`bench/migration.py %s --section %s`" % (opts, args.section))


def report(args, res, sent, times, verdict):
    rates = [res[c]["dirty_rate"]["med"] for c in res
             if "dirty_rate" in res[c]]
    failed = ["- %s, a run left out of the figures: %s." % (c, e)
              for c, r in res.items() for e in r["errors"]]
    head, cmd = section_head(args)
    doc = [head, "",
           "Command: %s (`bench/migration.py`; its defaults are 5 runs, "
           "512 MiB, unlimited, idle, tcg)." % cmd, "",
           "Machine: %s. Guest: %d MiB on a shared memfd, 1 vCPU, migrated "
           "live over TCP to a destination QEMU on the same machine "
           "(`-incoming tcp:127.0.0.1:PORT`), max-bandwidth %s; a fresh "
           "pair of QEMUs per run, configurations alternating. The guest "
           "fills %d MiB with a pattern, %s, waits %d s (every "
           "configuration; freehint's wait starts once its agent is "
           "connected), then migrates; %s. On the destination it checks "
           "every word of its pattern."
           % (b.machine(args.accel), args.mem, args.bandwidth_name,
              args.check_mib,
              "writes %d MiB and frees every other 32 KiB of it (free "
              "memory in pieces no reporting order reaches)" % args.frag
              if args.frag else "dirties 60% of its RAM and frees it",
              args.settle,
              "busy: it rewrites its pattern at %g MiB/s during the "
              "migration (achieved, median of the runs: %s MiB/s)"
              % (args.rate, " ".join("%.1f" % r for r in rates) or "-")
              if args.workload == "busy" else
              "nothing runs but the checker, asleep on its port"),
           "", "Each cell is the median of the runs that completed and "
           "were checked; (a-b) is the lowest and highest of them, [a-b] "
           "the interquartile range when there were 5 or more; one value "
           "when all agree. \"pages used\" is the guest's RAM less its "
           "MemFree when the migration starts, in 4 KiB pages.", "",
           sent, "", times, ""] + failed + ([""] if failed else []) + [
           "Verdicts (full freehint against each reference):", ""] + \
        verdict + ["", WHY]
    png = plot(res, list(res), "Migration of a %d MiB guest, %s, %s: "
               "median and lowest-highest of %d runs"
               % (args.mem, args.bandwidth_name, args.workload, args.runs),
               args.section)
    if png:
        doc += ["", "![memory sent whole and total time](%s)" % png]
    b.write_doc(args.section, "\n".join(doc), args.prov)


if __name__ == "__main__":
    sys.exit(main())
