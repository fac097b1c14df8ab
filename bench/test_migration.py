#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Unit tests of bench/migration.py's pure parts: option parsing, the
guest's memcheck verdicts, statistics, table cells and verdicts. Run by
tests/checks.d/18-bench-unit.sh; no guest boots here."""
import argparse
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402
import migration as m  # noqa: E402


class Parse(unittest.TestCase):
    def test_bandwidth(self):
        self.assertEqual(m.parse_bandwidth("1g"), 125000000)
        self.assertEqual(m.parse_bandwidth("10G"), 1250000000)
        self.assertGreater(m.parse_bandwidth("unlimited"), 10**10)
        for bad in ("", "2g", "100", "1gbit"):
            with self.assertRaises(argparse.ArgumentTypeError):
                m.parse_bandwidth(bad)

    def test_section_head(self):
        a = argparse.Namespace(runs=5, mem=512, bandwidth_name="1g",
                               workload="idle", accel="tcg",
                               section=m.SECTION)
        self.assertEqual(m.section_head(a), (
            "## Migration", "`bench/run.sh migration --runs 5 --mem 512 "
            "--bandwidth 1g --workload idle --accel tcg`"))
        a.section = "21-migration-1g"
        head, cmd = m.section_head(a)
        self.assertEqual(head, "## Migration: 512 MiB guest, 1g, idle")
        self.assertTrue(cmd.endswith("--section 21-migration-1g`"), cmd)
        a.workload, a.frag_mib = "fragmented", 320
        a.section = "22-migration-fragmented"
        head, cmd = m.section_head(a)
        self.assertEqual(head, "## Migration: 512 MiB guest, 1g, fragmented")
        self.assertIn("--workload fragmented --accel tcg --frag-mib 320 ", cmd)

    def test_dest_gone(self):
        class Dst:
            def __init__(self, lines):
                self.text = lines

            def lines(self):
                return self.text
        self.assertEqual(
            m.dest_gone(Dst(["[ 17.0] BUG: kernel NULL pointer dereference"])),
            "the guest kernel crashed: [ 17.0] BUG: kernel NULL pointer "
            "dereference")
        self.assertIn("exited", m.dest_gone(Dst(["BENCH booted"])))

    def test_pass_from_log(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            vm = argparse.Namespace(dir=d)
            log = os.path.join(d, "freehintd.log")
            with open(log, "w") as f:
                f.write("freehintd: vm x: hint pass 1 over after 252 ms "
                        "(the pass holds all it captured), 171 MiB held\n")
            self.assertEqual(m.pass_from_log(vm, timeout=0), (252, 171))
            # No pass: said at once, not waited for.
            with open(log, "w") as f:
                f.write("freehintd: vm x: no hint pass: at 1024 MiB/s ...\n")
            t = time.monotonic()
            self.assertIsNone(m.pass_from_log(vm, timeout=30))
            self.assertLess(time.monotonic() - t, 5)
            with open(log, "w") as f:
                f.write("freehintd: vm x: migration started\n")
            self.assertIsNone(m.pass_from_log(vm, timeout=0))

    def test_configs(self):
        self.assertEqual(m.parse_configs("none,freehint-auto"),
                         ["none", "freehint-auto"])
        self.assertEqual(m.parse_configs("qemu-hint+report"),
                         ["qemu-hint+report"])
        for bad in ("", ",", "none,bogus", "freehint"):
            with self.assertRaises(argparse.ArgumentTypeError):
                m.parse_configs(bad)

    def test_memcheck_ok(self):
        v = m.parse_memcheck("BENCH memcheck ok mib=64 written_mib=320 "
                             "seconds=10.0")
        self.assertTrue(v["ok"])
        self.assertEqual(v["mib"], 64)
        self.assertAlmostEqual(v["rate"], 32.0)
        idle = m.parse_memcheck("BENCH memcheck ok mib=64 written_mib=0 "
                                "seconds=0.0")
        self.assertEqual(idle["rate"], 0.0)

    def test_memcheck_bad(self):
        v = m.parse_memcheck("BENCH memcheck bad chunk=3 word=7 "
                             "got=0000000000000000 want=1234")
        self.assertFalse(v["ok"])
        self.assertIn("chunk=3", v["why"])
        with self.assertRaises(ValueError):
            m.parse_memcheck("BENCH memcheck filled mib=64 rate=0")


    def test_crash(self):
        self.assertIsNone(m.crash(["[ 1.0] ok", "BENCH ready"]))
        self.assertEqual(m.crash(["x", "[ 51.5] list_del corruption. next",
                                  "[ 51.6] kernel BUG at lib/list_debug.c"]),
                         "[ 51.5] list_del corruption. next")


class Stats(unittest.TestCase):
    def test_odd(self):
        s = b.stats([5, 1, 3])
        self.assertEqual((s["med"], s["lo"], s["hi"], s["n"]), (3, 1, 5, 3))

    def test_quartiles(self):
        s = b.stats([1, 2, 3, 4, 5])
        self.assertEqual((s["q1"], s["med"], s["q3"]), (2, 3, 4))
        s = b.stats([10, 20, 30, 40])
        self.assertEqual(s["med"], 25)
        self.assertEqual((s["q1"], s["q3"]), (17.5, 32.5))

    def test_one_and_none(self):
        s = b.stats([7])
        self.assertEqual((s["q1"], s["med"], s["q3"]), (7, 7, 7))
        with self.assertRaises(ValueError):
            b.stats([])

    def test_summarise_skips_failures(self):
        row = m.summarise([{"a": 1, "b": None}, {"error": "boom"},
                           {"a": 3, "b": None}])
        self.assertEqual((row["runs"], row["ok"]), (3, 2))
        self.assertEqual(row["errors"], ["boom"])
        self.assertEqual(row["a"]["med"], 2)
        self.assertNotIn("b", row)
        none = m.summarise([{"error": "x"}])
        self.assertEqual(none["ok"], 0)
        self.assertNotIn("a", none)


class Output(unittest.TestCase):
    def test_cell(self):
        self.assertEqual(b.cell(None, "%d"), "-")
        self.assertEqual(b.cell(b.stats([4, 4, 4]), "%d"), "4")
        self.assertEqual(b.cell(b.stats([1, 2, 9]), "%d"), "2 (1-9)")
        self.assertEqual(b.cell(b.stats([1, 2, 3, 4, 5]), "%.1f"),
                         "3.0 [2.0-4.0]")

    def test_tables(self):
        res = {"none": m.summarise([{"used": 10, "transferred": 1.0,
                                     "total_ms": 5}]),
               "freehint-auto": m.summarise([{"error": "x"}])}
        sent, times = m.tables(res, ["none", "freehint-auto"])
        lines = sent.split("\n")
        self.assertEqual(len(lines), 4)
        self.assertTrue(lines[0].startswith("| configuration"))
        self.assertIn("| none ", lines[2])
        self.assertIn("1/1", lines[2])
        self.assertIn("0/1", lines[3])
        self.assertIn("total ms", times.split("\n")[0])
        # Every row has as many cells as the header.
        for t in (sent, times):
            counts = {ln.count("|") for ln in t.split("\n")}
            self.assertEqual(len(counts), 1)

    def test_verdicts_on_medians(self):
        def row(vals):
            return m.summarise([{"transferred": v, "total_ms": 10 * v}
                                for v in vals])
        res = {"none": row([100, 110, 120]),
               "freehint-manual": row([40, 50, 200]),
               "freehint-auto": row([130, 140, 150])}
        v = m.verdicts(res)
        manual = [x for x in v if x.startswith("- freehint-manual sent")]
        self.assertEqual(len(manual), 1)
        self.assertIn("50 MiB, none 110 MiB", manual[0])
        self.assertIn("**less**", manual[0])
        self.assertIn("overlap", manual[0])
        auto = [x for x in v if x.startswith("- freehint-auto sent")][0]
        self.assertIn("not less", auto)
        self.assertNotIn("overlap", auto)
        # References that were not run give no verdict at all.
        self.assertFalse([x for x in v if "qemu-hint" in x])

    def test_verdict_not_measured(self):
        res = {"none": m.summarise([{"error": "boot"}]),
               "freehint-auto": m.summarise([{"transferred": 1.0,
                                              "total_ms": 1}])}
        v = m.verdicts(res)
        self.assertTrue(v)
        self.assertTrue(all("not measured (none: boot)" in x for x in v))
        # Each side's own reason, not the first error of either.
        res["freehint-manual"] = m.summarise([{"error": "crash"}])
        res["none"] = m.summarise([{"transferred": 1.0, "total_ms": 1}])
        v = m.verdicts(res)
        manual = [x for x in v if x.startswith("- freehint-manual vs none")]
        self.assertEqual(len(manual), 2)
        self.assertTrue(all("(freehint-manual: crash)" in x for x in manual))


if __name__ == "__main__":
    unittest.main()
