#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Scale benchmark (issue 7): one freehintd serving many VMs at once. The
load generator (bench/loadgen.c, built from the project's peer module and
codec) plays N VMs: it serves each VM's QMP and channel unix sockets and
sends REPORTED batches of 2 MiB ranges as fast as the Acks come back (at
most max_inflight batches outstanding per VM). Each VM's RAM is a real
memfd, so every applied range is a real hole punched by freehintd.

  bench/scale.py [--vms 1,100,1000] [--seconds S] [--ranges R]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import time

import benchlib as b

LOADGEN = os.path.join(b.ROOT, "build/bench/freehint-loadgen")
FREEHINTD = os.path.join(b.ROOT, "build/freehintd")


WHY = """Why the latency grows with the number of VMs, and what the rows
with written pages measure. Each punch of a page that the generator has
written and mapped must unmap it from the generator's address space and
flush its TLB on the other CPUs (`perf record -g -p $(pgrep -d, freehintd)`
during a paced run shows where: `unmap_page_range` and the TLB flush; on
a paravirtualized build machine page-table updates and TLB flushes are
slow). The generator pays the other half: writing a punched page again
is a page fault. With as many CPUs as here, the two processes compete
for the machine (the table's CPU columns), and the written-page latency
moves a great deal from one run to the next. The rows with "pages never
written" take that cost away and show the daemon itself. The daemon's
event loop waits on nothing but the agents: VMs' monitors are watched
for QMP `MIGRATION` events rather than polled. On a real host the pages
punched belong to a guest whose vCPUs fault them back in only when the
guest allocates them again, on many CPUs."""


def more_files():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# (load, batches a second per VM (None: --rate), pages written: loadgen flag)
MODES = (("saturated", 0, ""), ("saturated, pages never written", 0, "-T"),
         ("paced", None, ""),
         ("paced, first page of each range written", None, "-F"),
         ("paced, pages never written", None, "-T"))


# VMs per generator process: each QEMU is a process of its own, whose
# /proc/PID/maps and fd table freehintd reads for every VM it resolves;
# a thousand VMs in one process would make each of those reads a thousand
# VMs long. Few processes all the same, as they share the CPUs with
# freehintd.
VMS_PER_PROC = 50


def run_one(n, args, rate, touch_flag):
    d = os.path.join("/tmp", "fh-scale-%d" % n)  # short socket paths
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    # freehintd serves only monitors whose listener's executable is named
    # qemu*: the generator plays QEMU, so it runs under such a name.
    exe = os.path.join(d, "qemu-loadgen")
    shutil.copy(LOADGEN, exe)
    gens = []
    for first in range(0, n, VMS_PER_PROC):
        k = min(VMS_PER_PROC, n - first)
        out = open(os.path.join(d, "loadgen.%d.out" % first), "w+")
        p = subprocess.Popen([exe, "-n", str(k), "-o", str(first), "-d", d,
                              "-t", str(args.seconds), "-r", str(args.ranges),
                              "-w", "120", "-s", str(args.settle),
                              "-R", str(rate), "-L",
                              os.path.join(d, "lat.%d" % first)]
                             + ([touch_flag] if touch_flag else []),
                             stdout=out, stderr=open(os.path.join(
                                 d, "loadgen.%d.err" % first), "w"),
                             preexec_fn=more_files)
        gens.append((first, p, out))
    end = time.monotonic() + 60
    for first, p, out in gens:
        while "listening" not in open(out.name).read():
            if p.poll() is not None or time.monotonic() > end:
                raise RuntimeError("loadgen did not start (%s)" % d)
            time.sleep(0.05)
    with open(os.path.join(d, "freehintd.all.conf"), "w") as conf:
        for first, _, _ in gens:
            name = "freehintd.conf" if first == 0 else \
                "freehintd.%d.conf" % first
            conf.write(open(os.path.join(d, name)).read())
    dlog = open(os.path.join(d, "freehintd.log"), "w")
    # The per-VM batch rate limit protects against one guest; here the
    # point is the daemon's own capacity, so it is lifted.
    fd = subprocess.Popen([FREEHINTD, "-d", "-f",
                           os.path.join(d, "freehintd.all.conf"), "--control",
                           os.path.join(d, "ctl.sock"), "--vsock-port", "0",
                           "--max-batches-per-sec", "1000000"],
                          stdout=dlog, stderr=dlog, preexec_fn=more_files)
    try:
        for _, p, _ in gens:
            p.wait(timeout=180 + args.seconds)
        # Both of freehintd's processes (privsep): parent and worker.
        cpu = b.tree_cpu_seconds(fd.pid)
        rss = b.tree_hwm_kib(fd.pid) // 1024
    finally:
        for p in [fd] + [g[1] for g in gens]:
            if p.poll() is None:
                p.terminate()
                p.wait()
    return merge(d, gens, cpu, rss)


def merge(d, gens, cpu, rss):
    """One row from the generators' figures and latencies."""
    parts, lat = [], []
    for first, _, out in gens:
        out.seek(0)
        r = {}
        for line in out:
            k, _, v = line.strip().partition(" ")
            r[k] = v
        if "ranges_per_sec" not in r:
            raise RuntimeError("loadgen gave no figures (%s)" % d)
        parts.append(r)
        with open(os.path.join(d, "lat.%d" % first)) as f:
            lat += [float(x) for x in f]
    lat.sort()

    def total(k, conv=int):
        return sum(conv(r[k]) for r in parts)

    def pct(q):
        return "%.3f" % lat[int(q * (len(lat) - 1))] if lat else "0"
    slow = max(parts, key=lambda r: float(r["slowest_vm_mean_ms"]))
    res = {"connected": total("connected"),
           "connect_seconds": "%.2f" % max(
               float(r["connect_seconds"]) for r in parts),
           "ranges_per_sec": "%.0f" % total("ranges_per_sec", float),
           "batches_per_sec": "%.0f" % total("batches_per_sec", float),
           "batches_rejected": total("batches_rejected"),
           "latency_p50_ms": pct(0.5), "latency_p99_ms": pct(0.99),
           "latency_max_ms": pct(1.0),
           "slowest_vm": slow["slowest_vm"],
           "slowest_vm_mean_ms": slow["slowest_vm_mean_ms"],
           "loadgen_cpu": "%.2f" % total("loadgen_cpu", float),
           "daemon_cpu": cpu, "daemon_rss_mib": rss}
    rej = [r["last_reject"] for r in parts if r.get("last_reject")]
    if rej:
        res["last_reject"] = rej[-1]
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", default="1,100,1000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--ranges", type=int, default=16)
    ap.add_argument("--rate", type=float, default=1.0)
    ap.add_argument("--settle", type=int, default=10,
                    help="seconds between the last Welcome and the load")
    ap.add_argument("--max-written-vms", type=int, default=100,
                    help="the modes that write every page run up to this "
                    "many VMs: each keeps up to max_inflight batches of "
                    "RANGES x 2 MiB written, 128 MiB a VM in flight")
    b.add_accel(ap, guests=False)
    args = ap.parse_args()
    # No guest boots here: loadgen plays the VMs.
    args.prov = b.Provenance(accel=None)
    subprocess.run(["make", "-s", "-C", b.ROOT, "bench-loadgen",
                    "build/freehintd"], check=True)
    res = {}
    for n in [int(x) for x in args.vms.split(",")]:
        for mode, rate, touch_flag in MODES:
            rate = args.rate if rate is None else rate
            load = mode if rate == 0 else "%g batch/s per VM%s" % (
                rate, mode[len("paced"):])
            if touch_flag == "" and n > args.max_written_vms:
                res[n, load] = {"error": "not run: every page written, "
                                "more VMs than --max-written-vms %d (the "
                                "machine's memory, %d MiB, would not hold "
                                "what is in flight)" % (
                                    args.max_written_vms,
                                    os.sysconf("SC_PHYS_PAGES")
                                    * os.sysconf("SC_PAGE_SIZE") >> 20)}
                print(n, load, res[n, load])
                continue
            try:
                res[n, load] = run_one(n, args, rate, touch_flag)
            except Exception as e:  # noqa: BLE001: a failed run is a row
                res[n, load] = {"error": str(e)}
            print(n, load, res[n, load])
    report(args, res)


def report(args, res):
    rows, notes = [], []
    for (n, load), r in res.items():
        if "error" in r:
            skipped = r["error"].startswith("not run")
            rows.append([n, load, "not run" if skipped else "failed"]
                        + ["-"] * 11)
            notes.append("- %d VMs, %s: %s." % (
                n, load, r["error"] if skipped else "failed: " + r["error"]))
            continue
        rows.append([n, load, r["connected"], r["connect_seconds"],
                     r["ranges_per_sec"], r["batches_per_sec"],
                     r["batches_rejected"], r["latency_p50_ms"],
                     r["latency_p99_ms"],
                     "%s (vm%s)" % (r["slowest_vm_mean_ms"], r["slowest_vm"]),
                     r["latency_max_ms"],
                     "%.1f" % (r["daemon_cpu"]), r["loadgen_cpu"],
                     r["daemon_rss_mib"]])
        if int(r["connected"]) < n:
            notes.append("- **%d VMs: only %s connected** within 120 s."
                         % (n, r["connected"]))
        if float(r["latency_p99_ms"]) > 1000:
            notes.append("- **%d VMs, %s: p99 ack latency %s ms, over 1 s**"
                         ": a guest waits that long for each batch, and "
                         "the guest kernel fails a report that is not "
                         "acked within 5 s (the pages are offered again "
                         "later). Batches rejected for a missed deadline: "
                         "%s." % (n, load, r["latency_p99_ms"],
                                  r["batches_rejected"]))
        if r.get("last_reject"):
            notes.append("- %d VMs: %s batches rejected, last: %s."
                         % (n, r["batches_rejected"], r["last_reject"]))
    hdr = ["VMs", "offered load", "connected", "connect s", "ranges/s", "batches/s",
           "rejected", "p50 ms", "p99 ms", "slowest VM mean ms",
           "max ms", "freehintd CPU s", "loadgen CPU s",
           "freehintd peak RSS MiB"]
    tab = b.table(hdr, rows)
    print(tab)
    print("\n".join(notes))
    doc = ["## Scale", "",
           "Command: `bench/run.sh scale` (runs `python3 bench/scale.py "
           "--vms %s --seconds %d --ranges %d --rate %g --settle %d "
           "--max-written-vms %d`)." % (
               args.vms, args.seconds, args.ranges, args.rate,
               args.settle, args.max_written_vms), "",
           "Machine: %s. One freehintd (`--max-batches-per-sec 1000000`: "
           "the per-VM rate limit is lifted to measure the daemon itself) "
           "and `build/bench/freehint-loadgen` playing N VMs (a process per "
           "%d VMs) on the same machine, sharing its CPUs. Per VM: 64 MiB of RAM in a real memfd "
           "(the generator writes every page of each range before sending "
           "it, so each punch is a real fallocate that frees what it "
           "claims; \"first page\": one page of each), a QMP unix "
           "socket answering what freehintd asks (the generator is not "
           "QEMU: it serves `qom-get`, `info mtree -f`, `gpa2hva`, "
           "`migrate-set-capabilities` and `query-migrate` only, in a "
           "thread of its own as QEMU does), and the channel socket on "
           "which it "
           "acts as the agent: REPORTED batches of %d ranges of 2 MiB for "
           "%d s, from %d s after all VMs are welcomed (freehintd reads "
           "each VM's memory map again after its Hello), either saturated (a new "
           "batch as soon as an Ack frees one of the Welcome's "
           "max_inflight slots: the daemon's capacity, and latency is then "
           "queueing) or paced at %g batch/s per VM (latency at a steady "
           "load). \"pages never written\": the generator skips the "
           "write, so each punch finds nothing to free or unmap: the "
           "daemon's own ceiling. Latency: from writing a batch to reading "
           "its Ack, of applied batches only (rejected ones are counted "
           "apart). freehintd punches on a pool of worker threads. "
           "freehintd keeps each VM's QMP socket open for "
           "MIGRATION events (none come here)."
           % (b.machine(None), VMS_PER_PROC, args.ranges, args.seconds,
              args.settle,
              args.rate), "", tab,
           ""] + notes + ["", WHY]
    b.write_doc("50-scale", "\n".join(doc), args.prov)


if __name__ == "__main__":
    sys.exit(main())
