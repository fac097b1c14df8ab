#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Migration benchmark (issue 7): pages a migration sends, with no hinting,
with QEMU's virtio-balloon free-page-hint and with freehint, for workloads
(a) dirty-and-free and (b) fragmented free memory.

  bench/migration.py [--mem MIB] [--bandwidth MIB_PER_S]
"""
import argparse
import os
import sys
import time

import benchlib as b

WORKLOADS = {
    "dirty": ("migrate-dirty", "(a) 60% of RAM dirtied, then freed"),
    "frag": ("migrate-frag", "(b) memory filled, every other 64 KiB freed"),
}
CONFIGS = ("none", "qemu-hint", "freehint")


def frag_buddyinfo():
    log = os.path.join(b.OUT, "vm", "mig-frag-none", "serial.log")
    try:
        with open(log) as f:
            return [ln.split(" ", 2)[2].rstrip() for ln in f
                    if ln.startswith("BENCH buddyinfo")]
    except OSError:
        return ["(not available)"]


def run_one(wl, cfg, args):
    """One guest, one migration; a dict of figures or of the failure."""
    name = "mig-%s-%s" % (wl, cfg)
    vm = b.Vm(name, WORKLOADS[wl][0], mem_mib=args.mem,
              balloon="hint" if cfg == "qemu-hint" else None,
              freehint=cfg == "freehint")
    try:
        if cfg == "freehint":
            vm.start_freehintd()
        vm.wait(r"^BENCH ready", 240)
        used_kib = vm.value("used_kib")[-1]
        if cfg == "freehint":
            b.freehint_hint(vm)
        st = vm.migrate(args.bandwidth << 20)
        if st.get("status") != "completed":
            return {"error": "migration %s" % st.get("status")}
        ram = st["ram"]
        return {"used": used_kib // 4, "normal": ram["normal"],
                "duplicate": ram["duplicate"],
                "transferred": ram["transferred"],
                "time": st["total-time"]}
    except Exception as e:  # noqa: BLE001: one failed run is a row
        return {"error": str(e)}
    finally:
        vm.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mem", type=int, default=512)
    ap.add_argument("--bandwidth", type=int, default=128)
    args = ap.parse_args()
    b.build_initrd()
    why_not = b.have_freehint()
    res = {}
    for wl in WORKLOADS:
        for cfg in CONFIGS:
            if cfg == "freehint" and why_not:
                res[wl, cfg] = {"error": "freehint " + why_not}
                continue
            t = time.monotonic()
            res[wl, cfg] = run_one(wl, cfg, args)
            print("%s/%s: %s (%.0f s)" % (wl, cfg, res[wl, cfg],
                                          time.monotonic() - t))
    report(args, res)


def verdicts(res):
    out = []
    for wl in WORKLOADS:
        fh, qh = res[wl, "freehint"], res[wl, "qemu-hint"]
        if "error" in fh:
            out.append("- **%s: target not measured**: %s." % (wl, fh["error"]))
            continue
        if wl == "dirty":
            ok = "error" not in qh and fh["normal"] <= qh["normal"]
            out.append("- (a) pages sent %d vs QEMU free-page-hint %s: %s."
                       % (fh["normal"], qh.get("normal", "n/a"),
                          "met" if ok else "**NOT MET**"))
        else:
            lim = 1.1 * fh["used"]
            ok = fh["normal"] <= lim
            out.append("- (b) pages sent %d vs 1.1 x pages used %d: %s."
                       % (fh["normal"], lim, "met" if ok else "**NOT MET**"))
        if "error" not in qh:
            ok = fh["time"] <= qh["time"]
            out.append("- %s total time %d ms vs QEMU free-page-hint %d ms: "
                       "%s." % (wl, fh["time"], qh["time"],
                                "met" if ok else "**NOT MET**"))
    return out


def report(args, res):
    rows = []
    for wl in WORKLOADS:
        ref = res[wl, "qemu-hint"]
        for cfg in CONFIGS:
            r = res[wl, cfg]
            if "error" in r:
                rows.append([wl, cfg] + ["not measured"] + ["-"] * 7)
                continue
            rows.append([wl, cfg, r["used"], r["normal"],
                         "%.2f" % (r["normal"] / r["used"]), r["duplicate"],
                         "%.1f" % (r["transferred"] / 2**20), r["time"],
                         b.ratio(r["normal"], ref.get("normal")),
                         b.ratio(r["time"], ref.get("time"))])
    hdr = ["workload", "hinting", "pages used", "ram.normal",
           "normal/used", "ram.duplicate", "MiB transferred",
           "total-time ms", "normal vs qemu-hint", "time vs qemu-hint"]
    tab = b.table(hdr, rows)
    verdict = verdicts(res)
    print(tab)
    print("\n".join(verdict))
    plot = plot_bars(res)
    doc = ["## Migration", "",
           "Command: `bench/run.sh migration` (runs `python3 "
           "bench/migration.py --mem %d --bandwidth %d`)." % (args.mem,
                                                              args.bandwidth),
           "", "Machine: %s. Guest: %d MiB on a shared memfd, 1 vCPU; "
           "migration to `exec:cat > /dev/null` with max-bandwidth %d MiB/s; "
           "one fresh guest per row." % (b.machine(), args.mem,
                                         args.bandwidth), "",
           "Workloads: " + "; ".join("%s = %s" % (k, v[1])
                                     for k, v in WORKLOADS.items()) + ".",
           "\"pages used\" is MemTotal - MemFree in the guest when the "
           "migration starts (4 KiB pages); `ram.normal` counts pages sent "
           "whole, `ram.duplicate` zero pages sent as a few bytes.", "",
           tab, "", "Targets:", ""] + verdict + [
               "", "Free blocks per order in the fragmented guest "
               "(`/proc/buddyinfo` when the migration starts, "
               "orders 0 to 10):", "", "```"] + frag_buddyinfo() + ["```"]
    if plot:
        doc += ["", "![pages sent per migration](%s)" % plot]
    b.write_doc("20-migration", "\n".join(doc))


def plot_bars(res):
    dat = os.path.join(b.OUT, "migration.dat")
    with open(dat, "w") as f:
        f.write("workload used " + " ".join(CONFIGS) + "\n")
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
set title 'Migration of a %s guest: memory sent whole'
set key top left
plot '%s' using 2:xtic(1) title 'used by guest', \
  '' using 3 title 'no hinting', '' using 4 title 'QEMU free-page-hint', \
  '' using 5 title 'freehint'
""" % (os.path.join(b.DOCS, png), "512 MiB", dat))
    return png if ok else None


if __name__ == "__main__":
    sys.exit(main())
