#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Agent benchmark (issue 4): what freehint-agent itself costs inside the
guest. One 512 MiB guest (TCG) with the real freehint.ko and the real
agent on virtio-serial to the real freehintd on the build machine; the
guest (bench/guest/agent-scenario.sh) samples the agent's VmRSS/VmHWM,
utime+stime, on-CPU time and write() traffic once a second through a
minute idle and a minute of heavy reporting (churn dirtying and freeing
256 MiB in a loop), with the module's reporting counters beside them.

  bench/agent.py [--seconds S] [--churn-mib M] [--mem MIB]
"""
import argparse
import os
import re
import subprocess
import sys
import time

import benchlib as b

NAME = "60-agent"
PHASES = ("idle", "heavy")
USER_HZ = 100  # clock ticks of /proc/PID/stat: 100 on every x86-64 kernel
# Our own output directory, so that the initramfs built here never
# replaces the one the other benchmarks share (Vm boots OUT/initrd).
b.OUT = os.path.join(b.ROOT, "build", "bench", "agent")
GUEST_BIN = os.path.join(b.ROOT, "build", "bench", "guest")


def build_initrd():
    subprocess.run(["make", "-s", "-C", b.ROOT, "build/freehint-agent",
                    "bench-guest"], check=True)
    os.makedirs(b.OUT, exist_ok=True)
    subprocess.run([os.path.join(b.ROOT, "tests/guest/mkinitrd.sh"),
                    "-o", os.path.join(b.OUT, "initrd.cpio.gz"),
                    "-s", os.path.join(b.ROOT,
                                       "bench/guest/agent-scenario.sh"),
                    "-m", os.path.join(b.ROOT, "kmod/freehint.ko"),
                    "-b", os.path.join(b.ROOT, "build/freehint-agent"),
                    "-b", os.path.join(GUEST_BIN, "churn")], check=True)


def parse_samples(lines):
    """{phase: [sample dict, ...]} from the BENCH sample lines."""
    out = {p: [] for p in PHASES}
    for ln in lines:
        if not ln.startswith("BENCH sample "):
            continue
        kv = dict(f.split("=", 1) for f in ln.split()[2:] if "=" in f)
        if kv.get("phase") in out:
            out[kv["phase"]].append(kv)
    return out


def host_status(vm):
    try:
        return vm.fh_status()
    except (RuntimeError, ValueError, OSError,
            subprocess.TimeoutExpired) as e:
        return {"error": str(e)}


def run(args):
    """Boots the guest, follows its phases; returns (samples, host
    status at each phase boundary, console lines)."""
    vm = b.Vm("agent", "agent", mem_mib=args.mem,
              append="bench.seconds=%d bench.churn_mib=%d"
              % (args.seconds, args.churn_mib), accel=args.accel)
    host = {}
    try:
        vm.start_freehintd()
        for p in PHASES:
            vm.wait(r"^BENCH phase %s start" % p, 240)
            host[p + "_start"] = host_status(vm)
            vm.wait(r"^BENCH phase %s end" % p, args.seconds * 3 + 60)
            host[p + "_end"] = host_status(vm)
        vm.wait(r"^BENCH done", 120)
        lines = vm.lines()
    finally:
        vm.stop()
    return parse_samples(lines), host, lines


def summarise(phase, samples, host, seconds):
    """One column of the table, and the errors that make it worthless."""
    errs = []
    if len(samples) < 2:
        return None, ["%s: %d samples" % (phase, len(samples))]
    dead = [s["t"] for s in samples if "rss" not in s]
    if dead:
        errs.append("%s: the agent was gone at t=%s s" % (phase, dead[0]))
        return None, errs
    first, last = samples[0], samples[-1]
    d = lambda k: int(last[k]) - int(first[k])  # noqa: E731
    elapsed = int(last["t"]) - int(first["t"])
    busy, idle = d("busy"), d("idle")
    h0, h1 = host.get(phase + "_start", {}), host.get(phase + "_end", {})
    hd = lambda k: (h1[k] - h0[k]) if k in h0 and k in h1 else None  # noqa
    col = {
        "seconds": elapsed,
        "rss_first": int(first["rss"]),
        "rss_last": int(last["rss"]),
        "rss_max": max(int(s["rss"]) for s in samples),
        "hwm": int(last["hwm"]),
        "utime_s": d("ut") / USER_HZ,
        "stime_s": d("st") / USER_HZ,
        "oncpu_ms": d("ns") / 1e6,
        "cpu_pct": d("ns") / 1e7 / max(elapsed, 1),
        "guest_busy_pct": 100.0 * busy / max(busy + idle, 1),
        "kbatches": d("kbatches"),
        "kblocks": d("kblocks"),
        "kbytes": d("kbytes"),
        "kacked": d("kacked"),
        "kfailed": d("kfailed"),
        "ktimeouts": d("ktimeouts"),
        "wchar": d("wchar"),
        "syscw": d("syscw"),
        "rchar": d("rchar"),
        "syscr": d("syscr"),
        "host_reclaimed": hd("reclaimed_bytes"),
        "host_applied": hd("ranges_applied"),
        "host_rejected": hd("ranges_rejected"),
        "connected": bool(h0.get("connected")) and bool(h1.get("connected")),
    }
    if not col["connected"]:
        errs.append("%s: the agent was not connected to freehintd (%s)"
                    % (phase, h1.get("error") or h1.get("last_error")))
    if elapsed < seconds - 1:
        errs.append("%s: sampled %d s of %d" % (phase, elapsed, seconds))
    return col, errs


def marginal(cols):
    """CPU per MiB reported beyond what the agent spends idle anyway (the
    periodic Stats): the cost of reporting itself."""
    idle, heavy = cols.get("idle"), cols.get("heavy")
    if not idle or not heavy or not heavy["kbytes"]:
        return
    extra = heavy["oncpu_ms"] - idle["oncpu_ms"] * heavy["seconds"] / \
        max(idle["seconds"], 1)
    heavy["marginal_us"] = 1000.0 * extra / (heavy["kbytes"] / MIB)


MIB = 1024.0 * 1024.0
ROWS = (
    ("VmRSS at start / end / max KiB",
     lambda c: "%d / %d / %d" % (c["rss_first"], c["rss_last"], c["rss_max"])),
    ("VmHWM at end KiB", lambda c: "%d" % c["hwm"]),
    ("CPU utime + stime s", lambda c: "%.2f + %.2f = %.2f"
     % (c["utime_s"], c["stime_s"], c["utime_s"] + c["stime_s"])),
    ("on-CPU time ms (schedstat)", lambda c: "%.1f" % c["oncpu_ms"]),
    ("share of one vCPU", lambda c: "%.3f%%" % c["cpu_pct"]),
    ("whole guest busy", lambda c: "%.0f%%" % c["guest_busy_pct"]),
    ("kernel batches sent (report_batches)", lambda c: "%d" % c["kbatches"]),
    ("blocks / MiB reported", lambda c: "%d / %.1f"
     % (c["kblocks"], c["kbytes"] / MIB)),
    ("MiB acked by the host", lambda c: "%.1f" % (c["kacked"] / MIB)),
    ("batches failed / timed out", lambda c: "%d / %d"
     % (c["kfailed"], c["ktimeouts"])),
    ("agent write(): calls / KiB", lambda c: "%d / %.1f"
     % (c["syscw"], c["wchar"] / 1024.0)),
    ("agent read(): calls / KiB", lambda c: "%d / %.1f"
     % (c["syscr"], c["rchar"] / 1024.0)),
    ("CPU per MiB reported, us", lambda c: "%.1f"
     % (1000.0 * c["oncpu_ms"] / (c["kbytes"] / MIB)) if c["kbytes"]
     else "-"),
    ("  less the idle rate (reporting alone), us", lambda c: "-"
     if c.get("marginal_us") is None else "%.1f" % c["marginal_us"]),
    ("host: ranges applied / rejected", lambda c: "%s / %s"
     % (c["host_applied"], c["host_rejected"])),
    ("host: MiB reclaimed (freehintd)", lambda c: "-"
     if c["host_reclaimed"] is None else "%.1f" % (c["host_reclaimed"] / MIB)),
)


def observations(cols):
    """What this run shows, from its own figures."""
    idle, heavy = cols.get("idle"), cols.get("heavy")
    if not idle or not heavy:
        return []
    out = []
    if heavy["kbatches"]:
        out.append("- In this run: one kernel batch every %.1f s, %.1f MiB "
                   "each on average; %d failed, %d timed out."
                   % (heavy["seconds"] / heavy["kbatches"],
                      heavy["kbytes"] / MIB / heavy["kbatches"],
                      heavy["kfailed"], heavy["ktimeouts"]))
    grow = max(heavy["rss_max"], heavy["hwm"]) - idle["rss_first"]
    out.append("- Memory: VmRSS went from %d KiB at the start of the idle "
               "minute to at most %d KiB under load (VmHWM %d KiB): %s. "
               "Batches are flow-controlled (`max_inflight`) and never "
               "queued without bound." % (
                   idle["rss_first"], heavy["rss_max"], heavy["hwm"],
                   "it does not grow with the load" if grow <= 64 else
                   "**it grew by %d KiB**" % grow))
    return out


def report(args, cols, errors, churn, wall, load, order=None):
    rows = []
    for label, fmt in ROWS:
        rows.append([label] + [fmt(cols[p]) if cols.get(p) else "-"
                               for p in PHASES])
    tab = b.table(["agent, per phase of %d s" % args.seconds]
                  + list(PHASES), rows)
    print(tab)
    for e in errors:
        print("error:", e)
    verdict = []
    if errors:
        verdict = ["- **Not fully measured**: %s." % "; ".join(errors)]
    doc = ["## Agent resources", "",
           "Command: `bench/run.sh 60-agent` (runs `python3 bench/agent.py "
           "--seconds %d --churn-mib %d --mem %d`); %.0f s of wall time. "
           "Load average of the build machine before and after the run: "
           "%s and %s (other jobs sharing its CPUs slow the guest down, "
           "and a descheduled vCPU still counts as running inside the "
           "guest)."
           % (args.seconds, args.churn_mib, args.mem, wall, load[0],
              load[1]), "",
           "Machine: %s. Guest: %d MiB on a shared memfd, 1 vCPU, the real "
           "`freehint.ko` (page reporting at its default order) and "
           "`freehint-agent -d --transport virtio-serial` (default "
           "configuration) talking to the real `freehintd` on the build "
           "machine, which discards what is reported. "
           "`bench/guest/agent-scenario.sh` samples the agent once a second "
           "inside the guest: `VmRSS`/`VmHWM` from `/proc/PID/status`, "
           "utime+stime from `/proc/PID/stat` (10 ms ticks), the exact "
           "on-CPU time from `/proc/PID/schedstat`, write()/read() traffic "
           "from `/proc/PID/io` (wire frames to the port plus the ack lines "
           "to the module, and the module's batch text plus the host's "
           "Acks), and the module's counters from `/proc/freehint/stats`. "
           "*idle*: %d s with nothing running but the agent (and the "
           "sampler). *heavy*: %d s of `churn %d %d` (allocate %d MiB, "
           "write every page, free, in a loop), so page reporting fires "
           "continuously%s; the agent runs with `--report-defer-rate 0`, "
           "which makes it send those batches where by default it would "
           "give them back unsent (the guest allocates far faster than "
           "64 MiB/s). Host columns: deltas of `freehintctl status "
           "--json` over the phase."
           % (b.machine(args.accel), args.mem, args.seconds, args.seconds,
              args.seconds + 3, args.churn_mib, args.churn_mib,
              ": %s" % churn if churn else ""),
           "", tab, ""] + verdict + [
           "", "Reading the figures:", "",
           "- The agent's CPU time is guest time under TCG, where every "
           "instruction is emulated: under KVM the same work takes a "
           "fraction of it. The share of one vCPU and the cost per MiB "
           "reported are the figures to compare.",
           "- The CPU per MiB divides small totals (a few hundred ms); "
           "\"less the idle rate\" also subtracts the idle minute's rate "
           "(mostly the Stats), which moves by tens of ms between runs on "
           "a shared machine: read it as an order of magnitude.",
           "- Reference: the kernel's own free page reporting "
           "(`virtio_balloon` with `free-page-reporting=on`) has no "
           "userspace process at all, so its agent cost is zero by "
           "construction; its cost is in the kernel and QEMU and shows "
           "as guest throughput (section Overhead) and QEMU CPU time "
           "(section Reclaim). freehint pays this agent for what that "
           "reference cannot do: host-side validation against the guest's "
           "RAM map, HELD captures for migrations, and any transport "
           "(virtio-serial, vsock) without a balloon device.",
           "- Idle, the agent wakes only for the periodic free-memory "
           "Stats (freehintd's Welcome asks for one every 2 s by default, "
           "`stats_interval_ms`; the agent's own default is 10 s), each a "
           "read of `/proc/freehint/blocks`: the kernel walks the free "
           "lists in the agent's system time, which is most of its idle "
           "cost.",
           "- The kernel paces page reporting, not the agent: a reporting "
           "pass runs at most every 2 s (`page_reporting_delay`) with a "
           "budget per order, and only blocks of `report_order` (%s) and "
           "up, so under a churn freeing far more than that the module "
           "hands over a batch every few seconds."
           % ("order %s" % order if order is not None else "unknown")]
    doc += observations(cols)
    b.write_doc(NAME, "\n".join(doc), args.prov)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--churn-mib", type=int, default=256)
    ap.add_argument("--mem", type=int, default=512)
    b.add_accel(ap)
    args = ap.parse_args()
    args.prov = b.Provenance(args.accel)
    why_not = b.have_freehint()
    if why_not:
        print("bench agent: freehint " + why_not)
        report(args, {}, ["freehint " + why_not], None, 0,
               (b.loadavg(), b.loadavg()))
        return 1
    t0 = time.monotonic()
    build_initrd()
    cols, errors, churn, order = {}, [], None, None
    load = [b.loadavg()]
    try:
        samples, host, lines = run(args)
        for p in PHASES:
            cols[p], errs = summarise(p, samples[p], host, args.seconds)
            errors += errs
        marginal(cols)
        order = next((ln.split()[-1] for ln in lines
                      if ln.startswith("BENCH kstats report_order ")), None)
        churn = next((ln[len("BENCH churn: "):] for ln in lines
                      if ln.startswith("BENCH churn: ")), None)
        if churn is None:
            errors.append("churn printed no result")
        if cols.get("heavy") and cols["heavy"]["kbatches"] == 0:
            errors.append("heavy: the module reported nothing")
        for ln in lines:
            if re.match(r"BENCH (error|agentlog)", ln):
                print(ln)
    except Exception as e:  # noqa: BLE001: the run failed; say why
        errors.append(str(e))
    load.append(b.loadavg())
    report(args, cols, errors, churn, time.monotonic() - t0, load, order)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
