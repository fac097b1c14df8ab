#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Unit tests of bench/overhead.py's pure parts: the workloads and their
time, churn's line, a workload's result among the guest's lines, the MiB
discarded from the backing's samples, a run's figures, the table, the
verdicts and the reading, and the agent's thresholds read from its
sources; and benchlib's fault count and memfd size. Run by
tests/checks.d/18-bench-unit.sh; no guest boots here."""
import argparse
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402
import overhead as o  # noqa: E402

MIB = 1 << 20
LINE = ("churn: 2560 MiB in 20.31 s: 126.0 MiB/s, busy 20.31 s: 126.0 "
        "MiB/s, 20 rounds of 128 MiB")


class Workloads(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(o.parse_workload("full").kind, "full")
        w = o.parse_workload("paced:32.5")
        self.assertEqual((w.kind, w.rate), ("paced", 32.5))
        w = o.parse_workload("bursty:2:4")
        self.assertEqual((w.kind, w.busy, w.idle), ("bursty", 2, 4))
        for bad in ("", "fast", "paced", "paced:0", "paced:x", "paced:1:2",
                    "bursty:2", "bursty:0:4", "bursty:2:-1", "full:1"):
            with self.assertRaises(argparse.ArgumentTypeError):
                o.parse_workload(bad)

    def test_list(self):
        ws = o.parse_workloads("full,paced:8")
        self.assertEqual([w.spec for w in ws], ["full", "paced:8"])
        for bad in ("", ",", "full,full", "full,nope"):
            with self.assertRaises(argparse.ArgumentTypeError):
                o.parse_workloads(bad)

    def test_defaults_around_the_former_deferral(self):
        ws = o.parse_workloads(o.default_workloads())
        self.assertEqual([w.spec for w in ws],
                         ["full", "paced:32", "paced:64", "paced:96",
                          "bursty:2:4"])
        # Every default workload fits one kernel command-line word.
        self.assertNotIn(" ", o.default_workloads())

    def test_describe(self):
        self.assertEqual(o.describe(o.parse_workload("paced:64")),
                         "paced 64 MiB/s")
        self.assertEqual(o.describe(o.parse_workload("bursty:2:4")),
                         "bursty 2 s on, 4 s off")
        self.assertEqual(o.describe(o.parse_workload("full")), "full speed")

    def test_duration_whole_rounds(self):
        full, = o.parse_workloads("full")
        self.assertEqual(o.duration(full, 20, 128), 20)
        # 128 MiB at 32 MiB/s: a round every 4 s, 5 in 20 s.
        self.assertAlmostEqual(
            o.duration(o.parse_workload("paced:32"), 20, 128), 20)
        # At 96 MiB/s a round every 4/3 s: 15 rounds, 20 s.
        self.assertAlmostEqual(
            o.duration(o.parse_workload("paced:96"), 20, 128), 20)
        # At 8 MiB/s, one round every 16 s: two rounds, 32 s.
        self.assertAlmostEqual(
            o.duration(o.parse_workload("paced:8"), 20, 128), 32)

    def test_default_time_budget(self):
        ws = o.parse_workloads(o.default_workloads())
        secs = o.estimate_seconds(ws, 20, 128, 5, 5)
        self.assertLessEqual(secs, 40 * 60)
        self.assertGreater(secs, 25 * 60)


class Lines(unittest.TestCase):
    def test_result(self):
        r = o.parse_result("BENCH " + LINE)
        self.assertEqual((r["mib"], r["rounds"], r["size"]), (2560, 20, 128))
        self.assertAlmostEqual(r["secs"], 20.31)
        self.assertAlmostEqual(r["busy_rate"], 126.0)

    def test_churn_error(self):
        with self.assertRaises(ValueError):
            o.parse_result("churn: mmap: Cannot allocate memory")

    def test_segment(self):
        lines = ["BENCH booted", "BENCH churn-start full", "BENCH " + LINE,
                 "BENCH churn-start paced:32"]
        self.assertEqual(o.segment_result(lines, "full"), LINE)
        # Running: no line yet.
        self.assertIsNone(o.segment_result(lines, "paced:32"))
        # Not started yet.
        self.assertIsNone(o.segment_result(lines, "bursty:2:4"))
        # A serial line may end in a carriage return.
        self.assertEqual(o.segment_result(
            ["BENCH churn-start full\r", "BENCH " + LINE + "\r"], "full"),
            LINE)

    def test_segment_went_on_without_result(self):
        lines = ["BENCH churn-start full", "BENCH churn-start paced:32"]
        with self.assertRaises(RuntimeError):
            o.segment_result(lines, "full")
        with self.assertRaises(RuntimeError):
            o.segment_result(["BENCH churn-start full", "BENCH done"],
                             "full")

    def test_segment_churn_error_is_its_line(self):
        lines = ["BENCH churn-start full",
                 "BENCH churn: mmap: Cannot allocate memory"]
        line = o.segment_result(lines, "full")
        with self.assertRaises(ValueError):
            o.parse_result(line)


class Discarded(unittest.TestCase):
    def test_sum_of_decreases(self):
        # 400 MiB; 100 discarded; refaulted 60; 30 discarded; refault.
        s = [m * MIB for m in (400, 300, 300, 360, 330, 400)]
        self.assertEqual(o.discarded_mib(s), 130)

    def test_growth_only(self):
        self.assertEqual(o.discarded_mib([m * MIB for m in (1, 2, 3)]), 0)
        self.assertEqual(o.discarded_mib([5]), 0)
        self.assertEqual(o.discarded_mib([]), 0)


def run(cpu=4.0, faults=1000, discarded=0, fh=None, mib=2560):
    """One run: churn's line for mib MiB in 20 s, the host's figures."""
    line = ("churn: %d MiB in 20.00 s: %.1f MiB/s, busy 20.00 s: %.1f "
            "MiB/s, %d rounds of 128 MiB" % (mib, mib / 20.0, mib / 20.0,
                                              mib // 128))
    samples = [400 * MIB, (400 - discarded) * MIB]
    return o.figures(line, cpu, None if fh is None else 0.0, faults,
                     samples, None if fh is None else fh * MIB)


class Figures(unittest.TestCase):
    def test_run(self):
        r = o.figures(LINE, 3.0, 0.2, 32768, [400 * MIB, 272 * MIB],
                      150 * MIB)
        self.assertAlmostEqual(r["cpu"], 3.2)
        self.assertAlmostEqual(r["cpu_gib"], 3.2 / 2.5)
        self.assertEqual(r["kfaults"], 32.768)
        self.assertEqual(r["discarded"], 128)
        self.assertEqual(r["fh_discarded"], 150)

    def test_no_freehintd(self):
        r = run()
        self.assertIsNone(r["daemon_cpu"])
        self.assertIsNone(r["fh_discarded"])
        self.assertAlmostEqual(r["cpu_gib"], 4.0 / 2.5)


def sums_of(none, ref, fh, spec="full"):
    ws = o.parse_workloads(spec)
    res = {spec: {"none": none, "qemu-report": ref, "freehint": fh}}
    return o.summaries(res, ws), ws


class Verdicts(unittest.TestCase):
    none = [run(cpu=c) for c in (4.0, 4.1, 3.9, 4.0, 4.2)]
    ref = [run(cpu=c, discarded=100, faults=30000)
           for c in (4.4, 4.5, 4.6, 4.4, 4.5)]

    def test_met_and_discarding(self):
        fh = [run(cpu=c, discarded=60, fh=70) for c in (4.05, 4.1, 4.0,
                                                          4.1, 4.05)]
        sums, ws = sums_of(self.none, self.ref, fh)
        v = o.verdicts(sums, ws)
        self.assertEqual(len(v), 1)
        self.assertIn("- full speed (issue 14's target): freehint's host "
                      "CPU per GiB churned +1.2% against none's (medians "
                      "of 5 and 5 runs; target: within 3%): met; the "
                      "runs' ranges overlap; QEMU free-page-reporting "
                      "+12.5%; freehintd discarded 70 MiB during it "
                      "(median; the backing shows 60 MiB).", v[0])
        self.assertNotIn("NOT MET", v[0])

    def test_not_met_apart(self):
        fh = [run(cpu=c, discarded=100, fh=100) for c in (4.5, 4.6, 4.7,
                                                            4.5, 4.6)]
        sums, ws = sums_of(self.none, self.ref, fh)
        v = o.verdicts(sums, ws)[0]
        self.assertIn("**NOT MET**", v)
        self.assertIn("do not overlap", v)

    def test_nothing_discarded_is_said(self):
        fh = [run(cpu=4.0, fh=0)] * 5
        sums, ws = sums_of(self.none, self.ref, fh)
        v = o.verdicts(sums, ws)[0]
        self.assertIn("freehintd discarded 0 MiB during it (median), so "
                      "this does not show what discarding costs.", v)

    def test_failed(self):
        sums, ws = sums_of(self.none, self.ref, [{"error": "boot"}] * 2)
        self.assertEqual(o.verdicts(sums, ws),
                         ["- full speed (issue 14's target): **not "
                          "measured**: freehint: boot."])
        sums, ws = sums_of([{"error": "x"}], self.ref, [run(fh=1)])
        self.assertIn("the baseline (none) failed: x",
                      o.verdicts(sums, ws)[0])
        sums, ws = sums_of(self.none, [{"error": "y"}], [run(fh=1)])
        self.assertIn("QEMU free-page-reporting not measured (y)",
                      o.verdicts(sums, ws)[0])

    def test_count_over_workloads(self):
        ws = o.parse_workloads("full,paced:32")
        fh_ok = [run(cpu=4.0, fh=10)] * 5
        fh_bad = [run(cpu=5.0, fh=10)] * 5
        res = {"full": {"none": self.none, "qemu-report": self.ref,
                        "freehint": fh_ok},
               "paced:32": {"none": self.none, "qemu-report": self.ref,
                            "freehint": fh_bad}}
        v = o.verdicts(o.summaries(res, ws), ws)
        self.assertEqual(len(v), 3)
        self.assertIn("NOT MET", v[1])
        self.assertEqual(v[2], "- freehint within 3% of none on 1 of 2 "
                         "workloads, QEMU free-page-reporting on 0.")


class Report(unittest.TestCase):
    def test_table(self):
        fh = [run(cpu=4.0, discarded=60, fh=70)] * 3 + [{"error": "x"}]
        sums, ws = sums_of(Verdicts.none, Verdicts.ref, fh)
        tab = o.table(sums, ws).split("\n")
        self.assertEqual(len(tab), 5)
        self.assertIn("cost vs none (CPU)", tab[0])
        self.assertIn("| full speed | none ", tab[2])
        self.assertIn("+0.0%", tab[2])
        self.assertIn("| 3/4 ", tab[4])
        # 5 runs: median [IQR]; identical runs: the median alone.
        self.assertIn("1.60 [1.60-1.64]", tab[2])
        self.assertIn("| 70 ", tab[4])

    def test_reading_from_the_numbers(self):
        fh = [run(cpu=c, discarded=0, fh=0, faults=900)
              for c in (4.0, 4.1, 4.0, 4.1, 4.0)]
        sums, ws = sums_of(Verdicts.none, Verdicts.ref, fh)
        text = o.reading(sums, ws)
        self.assertIn("freehint's runs all cost less host CPU than all of "
                      "QEMU's reporting's on 1 of 1 workloads, and all "
                      "more on 0", text)
        self.assertIn("QEMU's reporting discarded the most during full "
                      "speed (100 MiB", text)
        self.assertIn("fewer page faults in every run with freehint than "
                      "in any with its own reporting on 1 of 1 workloads, "
                      "more on 0", text)
        # A median below QEMU's but runs that overlap it: neither.
        fh = [run(cpu=c, discarded=0, fh=0, faults=900)
              for c in (4.0, 4.1, 4.0, 4.1, 4.5)]
        text = o.reading(*sums_of(Verdicts.none, Verdicts.ref, fh))
        self.assertIn("less host CPU than all of QEMU's reporting's on 0 "
                      "of 1 workloads, and all more on 0", text)
        self.assertIn("Where freehintd discarded next to nothing (full "
                      "speed)", text)
        # none's IQR: 1.60-1.64 s per GiB, half of it 1.25% of 1.60.
        self.assertIn("less than the 3% margin", text)

    def test_reading_paced_short(self):
        ws = o.parse_workloads("paced:32")
        slow = run(mib=512)  # 25.6 MiB/s of 32
        res = {"paced:32": {"none": [run(mib=640)] * 3,
                            "qemu-report": [run(mib=640), slow],
                            "freehint": [run(mib=640, fh=3)]}}
        text = o.reading(o.summaries(res, ws), ws)
        self.assertIn("Paced runs more than 5% short of their rate (the "
                      "guest could not keep up): paced 32 MiB/s with "
                      "qemu-report.", text)
        res["paced:32"]["qemu-report"] = [run(mib=640)]
        self.assertIn("could not keep up): none.",
                      o.reading(o.summaries(res, ws), ws))

    def test_reading_noisy_baseline(self):
        none = [run(cpu=c) for c in (3.0, 4.0, 4.0, 5.0, 6.0)]
        sums, ws = sums_of(none, Verdicts.ref, [run(fh=5)] * 5)
        self.assertIn("more than the 3% margin of the target: a verdict "
                      "within that spread is weak", o.reading(sums, ws))


class Thresholds(unittest.TestCase):
    def test_read_from_the_agent(self):
        th = o.agent_thresholds()
        self.assertNotIn(None, th.values(), th)
        # Cross-checked with docs/agent.md: 100 ms samples, the third
        # deepest of 30 seconds' dips, 8 MiB to rearm, deferral off.
        self.assertEqual(th, {"sample_ms": 100, "seconds": 30, "skip": 2,
                              "rearm_mib": 8, "defer": 0})

    def test_text(self):
        th = {"sample_ms": 100, "seconds": 30, "skip": 2, "rearm_mib": 8,
              "defer": 0}
        ws = o.parse_workloads("paced:4,paced:32,bursty:2:4,bursty:1:40")
        t = o.thresholds_text(th, ws, 128)
        self.assertIn("is off (0) by default", t)
        self.assertIn("the third deepest of the last 30 seconds' dips", t)
        self.assertIn("rounds at most 15 s apart, 8.5 MiB/s and up", t)
        self.assertIn("paced 4 MiB/s is below that rate", t)
        self.assertIn("every 32 s (paced 4 MiB/s), 4 s (paced 32 MiB/s)", t)
        self.assertIn("Bursty 2 s on, 4 s off idles past the kernel's 2 s; "
                      "its bursts put dips in about 2 of every 6 seconds, "
                      "so the headroom holds across the idle.", t)
        self.assertIn("so the headroom lapses in the idle.", t)

    def test_unreadable(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            th = o.agent_thresholds(d)
        self.assertEqual(set(th.values()), {None})
        self.assertIn("could not be read", o.thresholds_text(th, [], 128))


class FakeVm:
    """A guest that has already printed everything: each workload's start
    and result (or churn's error for "paced:8"), a backing that loses
    1 MiB at each sample, CPU and faults that grow at each reading."""
    made = []

    def __init__(self, name, run, mem_mib, balloon, freehint, append,
                 accel):
        import re
        self.name, self.append, self.freehint = name, append, freehint
        self.pid, self.log, self.dir = 0, "serial.log", "."
        self.daemon = object() if freehint else None
        self.proc = argparse.Namespace(poll=lambda: None)
        self.text = ["BENCH booted"]
        for spec in re.search(r"churn_runs=(\S+)", append).group(1).split(
                ","):
            self.text += ["BENCH churn-start " + spec,
                          "BENCH churn: mmap: Cannot allocate memory"
                          if spec == "paced:8" else "BENCH " + LINE]
        self.text.append("BENCH done")
        self.backing, self.cpu, self.reclaimed = 400 * MIB, 0.0, 0
        self.stopped = False
        FakeVm.made.append(self)

    def lines(self):
        return self.text

    def wait(self, pattern, timeout=120):
        import re
        for ln in self.text:
            if re.search(pattern, ln):
                return ln
        raise RuntimeError("%s: no '%s' on the console" % (self.name,
                                                           pattern))

    def backing_bytes(self):
        self.backing -= MIB
        return self.backing

    def cpu_seconds(self):
        self.cpu += 1.0
        return self.cpu

    def daemon_cpu_seconds(self):
        return self.cpu / 10

    def start_freehintd(self):
        pass

    def fh_status(self):
        self.reclaimed += 5 * MIB
        return {"reclaimed_bytes": self.reclaimed}

    def stop(self):
        self.stopped = True


class Orchestration(unittest.TestCase):
    def setUp(self):
        self.saved = b.Vm, b.tree_faults
        b.Vm, b.tree_faults = FakeVm, lambda pid: 100
        FakeVm.made = []

    def tearDown(self):
        b.Vm, b.tree_faults = self.saved

    def args(self, specs, defer=None):
        return argparse.Namespace(
            mem=512, seconds=20, size=128, gap=2, accel="tcg", defer=defer,
            workloads=o.parse_workloads(specs))

    def test_guest_runs_every_workload(self):
        out = o.run_guest("freehint", self.args("full,paced:8,bursty:2:4",
                                                defer=64), 0)
        vm, = FakeVm.made
        self.assertTrue(vm.stopped)
        self.assertIn("bench.churn=20 bench.churn_mib=128 bench.churn_gap=2 "
                      "bench.churn_runs=full,paced:8,bursty:2:4 "
                      "bench.defer=64", vm.append)
        self.assertEqual(out["full"]["mib"], 2560)
        self.assertEqual(out["full"]["faults"], 0)
        self.assertEqual(out["full"]["fh_discarded"], 5)
        self.assertGreater(out["full"]["discarded"], 0)
        self.assertAlmostEqual(out["full"]["qemu_cpu"], 1.0)
        # churn's error is that workload's; the next one still runs.
        self.assertIn("churn failed: paced:8: churn: mmap", out["paced:8"][
            "error"])
        self.assertEqual(out["bursty:2:4"]["mib"], 2560)

    def test_no_daemon_no_count(self):
        out = o.run_guest("none", self.args("full"), 1)
        self.assertNotIn("bench.defer", FakeVm.made[0].append)
        self.assertIsNone(out["full"]["fh_discarded"])
        self.assertIsNone(out["full"]["daemon_cpu"])

    def test_lost_guest_skips_the_rest(self):
        def gone(self, pattern, timeout=120):
            raise RuntimeError("no '%s' on the console" % pattern)
        saved = FakeVm.wait
        FakeVm.wait = lambda self, p, timeout=120: (
            "BENCH booted" if "booted" in p else gone(self, p))
        try:
            out = o.run_guest("none", self.args("full,paced:32"), 0)
        finally:
            FakeVm.wait = saved
        self.assertIn("no '^BENCH churn-start full$'", out["full"]["error"])
        self.assertEqual(out["paced:32"]["error"],
                         "not run: full failed before")


class HostSide(unittest.TestCase):
    """benchlib's readers on this very process."""

    def test_faults(self):
        f0 = b.tree_faults(os.getpid())
        buf = bytearray(8 * MIB)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        self.assertGreaterEqual(b.tree_faults(os.getpid()) - f0, 1000)

    @unittest.skipUnless(hasattr(os, "memfd_create"), "no memfd_create")
    def test_memfd_allocated(self):
        import mmap
        fd = os.memfd_create("memory-backend-memfd")
        # A larger memfd that is not the guest's RAM (TCG's code buffer).
        jit = os.memfd_create("tcg-jit")
        try:
            os.ftruncate(fd, 64 * MIB)
            os.ftruncate(jit, 128 * MIB)
            paths = b.memfd_paths(os.getpid())
            self.assertEqual(len(paths), 1)
            self.assertEqual(os.stat(paths[0]).st_size, 64 * MIB)
            self.assertEqual(b.allocated_bytes(paths), 0)
            with mmap.mmap(fd, 64 * MIB) as m:
                for i in range(0, 16 * MIB, 4096):
                    m[i] = 1
            self.assertEqual(b.allocated_bytes(paths), 16 * MIB)
            # A hole punched: what a discard does.
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int,
                                       ctypes.c_long, ctypes.c_long)
            # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
            self.assertEqual(libc.fallocate(fd, 3, 0, 4 * MIB), 0)
            self.assertEqual(b.allocated_bytes(paths), 12 * MIB)
        finally:
            os.close(fd)
            os.close(jit)


if __name__ == "__main__":
    unittest.main()
