#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Migration benchmark (issue 7): pages a migration sends, with no hinting,
with QEMU's virtio-balloon free-page-hint and with freehint, for workloads
(a) dirty-and-free and (b) fragmented free memory.

  bench/migration.py [--mem MIB] [--bandwidth MIB_PER_S] [--append ARGS]
                     [--workloads dirty,frag] [--configs none,...] [--runs N]

Every row is the median of --runs fresh guests, with the spread (lowest
to highest) beside it; freehintd runs at its defaults.

--append adds to every guest's kernel command line (e.g. init_on_alloc=0);
runs with --append, --workloads or --configs print their table and leave
docs/ alone.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time

import benchlib as b

WORKLOADS = {
    "dirty": ("migrate-dirty", "(a) 60% of RAM dirtied, then freed"),
    "frag": ("migrate-frag", "(b) memory filled, every other 64 KiB freed"),
}
# freehint: `freehintctl hint`, then the migration once the pass holds;
# freehint-auto: the migration alone, freehintd starting the pass on
# QEMU's MIGRATION event (what it does on its own).
CONFIGS = ("none", "qemu-hint", "freehint", "freehint-auto")
# Blocks of every order: workload (b) frees 4-64 KiB pieces. Both, since
# held ranges are checked against the Welcome's min_order alignment.
FREEHINTD_ARGS = ()


WHY = """Reading the figures:

- QEMU's `free-page-hint` is blind to blocks under 4 MiB: on the
  fragmented guest it sends about what no hinting sends. freehint holds
  blocks of every order its backing can discard (`hint-min-order auto`:
  order 0 on this memfd), so the pass takes the fragmented free memory
  too.
- freehint-auto is what a libvirt user gets: the migration alone, with
  freehintd starting the pass on QEMU's MIGRATION event. freehintd holds
  the migration's bandwidth down until the pass is over (docs/hostd.md,
  "A migration's own hint pass"), so QEMU does not send whole what the
  pass is about to hold; "hint pass ms" is how long that took, inside
  "total-time".
- What freehint still sends above the pages in use is free memory the
  pass leaves to the guest: each zone's low watermark plus
  `hold_reserve_mb`, and ZONE_DMA, which is never held (docs/kmod.md).
- Debian's kernel zeroes every page it allocates (`init_on_alloc=1`) and
  the module captures by allocating: each held page is written once,
  which also brings back host memory that page reporting had discarded
  until freehintd punches it again. QEMU then reads every punched hole,
  which a memfd allocates again: "peak RssShmem" is the source's largest
  RssShmem while it migrates, sampled every 50 ms.
- The machine is shared with other engineers' QEMU guests on 2 CPUs:
  times move from run to run, which the spread shows."""


def frag_buddyinfo():
    log = os.path.join(b.OUT, "vm", "mig-frag-none", "serial.log")
    try:
        with open(log) as f:
            return [ln.split(" ", 2)[2].rstrip() for ln in f
                    if ln.startswith("BENCH buddyinfo")]
    except OSError:
        return ["(not available)"]


def wait_agent(vm, timeout=60):
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


def pass_at_release(vm, timeout=10):
    """(bytes held, ms the pass took) from freehintd's log: the pass's end
    and the release that follows the migration's end."""
    rx = re.compile(r"hint pass \d+ released, (\d+) MiB held")
    over = re.compile(r"hint pass \d+ over after (\d+) ms")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(os.path.join(vm.dir, "freehintd.log")) as f:
            text = f.read()
        m = rx.findall(text)
        if m:
            o = over.findall(text)
            return int(m[-1]) << 20, int(o[-1]) if o else -1
        time.sleep(0.1)
    raise RuntimeError("freehintd did not release after the migration")


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


def run_one(wl, cfg, args):
    """One guest, one migration; a dict of figures or of the failure."""
    name = "mig-%s-%s" % (wl, cfg)
    fh = cfg.startswith("freehint")
    vm = b.Vm(name, WORKLOADS[wl][0], mem_mib=args.mem,
              balloon="hint" if cfg == "qemu-hint" else None,
              freehint=fh, append=args.append)
    try:
        if fh:
            vm.start_freehintd(FREEHINTD_ARGS)
        vm.wait(r"^BENCH ready", 240)
        free_kib = vm.value("free_kib")[-1]
        used_kib = vm.value("used_kib")[-1]
        hint_s, held, pass_ms = 0.0, 0, -1
        if cfg == "freehint":
            hint_s, held = b.freehint_hint(vm)
        elif cfg == "freehint-auto":
            wait_agent(vm)
        rss_before = vm.status_kib("RssShmem") >> 10
        peak = RssPeak(vm)
        peak.start()
        st = vm.migrate(args.bandwidth << 20)
        rss_peak = peak.done()
        if cfg == "freehint-auto":
            held, pass_ms = pass_at_release(vm)
        if st.get("status") != "completed":
            return {"error": "migration %s" % st.get("status")}
        ram = st["ram"]
        return {"used": args.mem * 256 - free_kib // 4,
                "used_memtotal": used_kib // 4, "normal": ram["normal"],
                "duplicate": ram["duplicate"],
                "transferred": ram["transferred"] / 2**20,
                "migrate_ms": st["total-time"],
                "hint_ms": int(hint_s * 1000) if cfg == "freehint"
                else pass_ms,
                "held_mib": held >> 20, "rss_before": rss_before,
                "rss_peak": rss_peak,
                "time": st["total-time"] + int(hint_s * 1000)}
    except Exception as e:  # noqa: BLE001: one failed run is a row
        return {"error": str(e)}
    finally:
        vm.stop()


def summary(runs):
    """The runs of one row: medians of each figure and the runs' spread,
    or the first failure when none succeeded."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    out = {"n": len(ok), "failed": len(runs) - len(ok)}
    for k in ok[0]:
        vals = [r[k] for r in ok]
        out[k] = statistics.median(vals)
        out[k + "_lo"], out[k + "_hi"] = min(vals), max(vals)
    return out


def commit():
    r = subprocess.run(["git", "-C", b.ROOT, "describe", "--always",
                        "--dirty", "--abbrev=12"], capture_output=True,
                       text=True)
    return r.stdout.strip() or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mem", type=int, default=512)
    ap.add_argument("--bandwidth", type=int, default=128)
    ap.add_argument("--append", default="")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    wls = [w for w in args.workloads.split(",") if w]
    cfgs = [c for c in args.configs.split(",") if c]
    if not set(wls) <= set(WORKLOADS) or not set(cfgs) <= set(CONFIGS):
        ap.error("workloads: %s; configs: %s" % (",".join(WORKLOADS),
                                                 ",".join(CONFIGS)))
    partial = (args.append != "" or wls != list(WORKLOADS)
               or cfgs != list(CONFIGS))
    # What is built now is what is measured.
    args.commit = commit()
    b.build_initrd()
    why_not = b.have_freehint()
    res = {}
    for wl in wls:
        for cfg in cfgs:
            if cfg.startswith("freehint") and why_not:
                res[wl, cfg] = {"error": "freehint " + why_not}
                continue
            runs = []
            for i in range(args.runs):
                t = time.monotonic()
                runs.append(run_one(wl, cfg, args))
                print("%s/%s run %d: %s (%.0f s)" % (
                    wl, cfg, i + 1, runs[-1], time.monotonic() - t))
            res[wl, cfg] = summary(runs)
    if partial:
        print("(a partial run: docs/ not written)")
        return 0
    report(args, res)


def verdicts(res):
    out = []
    for wl in WORKLOADS:
        qh = res[wl, "qemu-hint"]
        for cfg in ("freehint", "freehint-auto"):
            out += verdict(wl, cfg, res[wl, cfg], qh, res[wl, "none"])
    return out


def verdict(wl, cfg, fh, qh, none):
    out = []
    if "error" in fh:
        return ["- **%s, %s: target not measured**: %s." % (wl, cfg,
                                                             fh["error"])]
    lim = 1.1 * fh["used"]
    ok = fh["normal"] <= lim
    out.append("- %s, %s: pages sent %d (median; highest %d) vs 1.1 x "
               "pages used %d: %s." % (wl, cfg, fh["normal"],
                                       fh["normal_hi"], lim,
                                       "met" if ok else "**NOT MET**"))
    for ref, what in ((qh, "QEMU free-page-hint"), (none, "no hinting")):
        if "error" in ref:
            continue
        ok = fh["time"] <= ref["time"]
        out.append("- %s, %s: time (%s) %d ms vs %s %d ms (medians): %s."
                   % (wl, cfg, "hint pass + migration" if cfg == "freehint"
                      else "migration, pass included", fh["time"], what,
                      ref["time"], "met" if ok else "**NOT MET**"))
    return out


def cell(r, k, fmt="%d"):
    """A median with its spread when the runs differ."""
    if r[k + "_lo"] == r[k + "_hi"]:
        return fmt % r[k]
    return (fmt + " (" + fmt + "-" + fmt + ")") % (r[k], r[k + "_lo"],
                                                   r[k + "_hi"])


def report(args, res):
    rows = []
    for wl in WORKLOADS:
        ref = res[wl, "qemu-hint"]
        for cfg in CONFIGS:
            r = res[wl, cfg]
            if "error" in r:
                rows.append([wl, cfg] + ["not measured"] + ["-"] * 13)
                continue
            fhc = cfg.startswith("freehint")
            rows.append([wl, cfg, "%d/%d" % (r["n"], r["n"] + r["failed"]),
                         cell(r, "used"), cell(r, "normal"),
                         "%.2f" % (r["normal"] / r["used"]),
                         cell(r, "duplicate"), cell(r, "transferred", "%.1f"),
                         cell(r, "held_mib") if fhc else "-",
                         cell(r, "hint_ms") if fhc else "-",
                         cell(r, "migrate_ms"), cell(r, "time"),
                         cell(r, "rss_before"), cell(r, "rss_peak"),
                         b.ratio(r["normal"], ref.get("normal")),
                         b.ratio(r["time"], ref.get("time"))])
    hdr = ["workload", "hinting", "runs ok", "pages used", "ram.normal",
           "normal/used", "ram.duplicate", "MiB transferred", "MiB held",
           "hint pass ms", "total-time ms", "time ms",
           "RssShmem MiB before", "peak RssShmem MiB during",
           "normal vs qemu-hint", "time vs qemu-hint"]
    tab = b.table(hdr, rows)
    verdict = verdicts(res)
    print(tab)
    print("\n".join(verdict))
    plot = plot_bars(res)
    doc = ["## Migration", "",
           "Command: `bench/run.sh migration` (runs `python3 "
           "bench/migration.py --mem %d --bandwidth %d --runs %d`), at "
           "commit `%s`." % (args.mem, args.bandwidth, args.runs, args.commit),
           "", "Machine: %s, shared with other users' QEMU guests while "
           "this ran (times are noisy). Guest: %d MiB on a shared memfd, "
           "1 vCPU; migration to `exec:cat > /dev/null` with max-bandwidth "
           "%d MiB/s; a fresh guest per run. Each cell is the median of "
           "the runs, with the lowest and highest in brackets when they "
           "differ." % (b.machine(), args.mem, args.bandwidth), "",
           "Workloads: " + "; ".join("%s = %s" % (k, v[1])
                                     for k, v in WORKLOADS.items()) + ".",
           "\"pages used\" is the guest's RAM less its free memory "
           "(MemFree) when the migration starts, in 4 KiB pages, as the "
           "target defines it. `ram.normal` counts pages sent "
           "whole, `ram.duplicate` zero pages sent as a few bytes. "
           "freehint: `freehintctl hint` before `migrate`; \"hint pass ms\" "
           "is the time until freehintd's held bytes last grew; its \"time "
           "ms\" is that plus QEMU's `total-time`, which is the time of "
           "the others. freehint-auto: `migrate` alone, once the agent is "
           "connected; freehintd starts the pass on QEMU's MIGRATION "
           "event and holds the migration back until it is over (\"hint "
           "pass ms\", part of `total-time`). freehintd runs with its "
           "defaults.", "",
           tab, "", "Targets:", ""] + verdict + [
               "", "Free blocks per order in the fragmented guest "
               "(`/proc/buddyinfo` when the migration starts, "
               "orders 0 to 10):", "", "```"] + frag_buddyinfo() + ["```"]
    if plot:
        doc += ["", "![pages sent per migration](%s)" % plot]
    doc += ["", WHY]
    b.write_doc("20-migration", "\n".join(doc))


def plot_bars(res):
    dat = os.path.join(b.OUT, "migration.dat")
    with open(dat, "w") as f:
        f.write("# workload used " + " ".join(CONFIGS) + "\n")
        for wl in WORKLOADS:
            used = next((r["used"] for c in CONFIGS
                         for r in [res[wl, c]] if "used" in r), 0)
            vals = [res[wl, c].get("normal", 0) * 4 / 1024 for c in CONFIGS]
            f.write("%s %.1f %s\n" % (wl, used * 4 / 1024,
                                      " ".join("%.1f" % v for v in vals)))
    png = "20-migration.png"
    ok = b.gnuplot("""
set terminal pngcairo size 800,450 noenhanced
set output '%s'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set ylabel 'MiB sent whole (ram.normal)'
set yrange [0:*]
set title 'Migration of a %s guest: memory sent whole'
set key top left
plot '%s' using 2:xtic(1) title 'used by guest', \
  '' using 3 title 'no hinting', '' using 4 title 'QEMU free-page-hint', \
  '' using 5 title 'freehint (pass first)', \
  '' using 6 title 'freehint (pass on migration start)'
""" % (os.path.join(b.DOCS, png), "512 MiB", dat))
    return png if ok else None


if __name__ == "__main__":
    sys.exit(main())
