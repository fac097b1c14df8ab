#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Unit tests of bench/reclaim.py's pure parts: a run's curve analysed,
the runs' summaries, the spread band of the plots and the verdicts. Run
by tests/checks.d/18-bench-unit.sh; no guest boots here."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reclaim as r  # noqa: E402


def run(footprint, t_drop, refill=900):
    """A run freed at 0 s from 400 MiB, down to footprint at t_drop."""
    curve = [(t / 10.0, 400.0 if t < t_drop * 10 else footprint)
             for t in range(-20, 100)]
    res = r.analyse([(t + 5, m * 1024) for t, m in curve], 5, 0.1, 0.2)
    res.update(daemon_cpu=None, fill_ms=800, refill_ms=refill)
    return res


class Analyse(unittest.TestCase):
    def test_curve(self):
        a = run(100, 2.0)
        self.assertEqual(a["at_free"], 400)
        self.assertEqual(a["footprint"], 100)
        self.assertAlmostEqual(a["t90"], 2.0)

    def test_never(self):
        a = run(400, 0)
        self.assertIsNone(a["t90"])


class Summary(unittest.TestCase):
    def test_medians_and_failures(self):
        runs = [run(100, 2.0), run(110, 4.0), run(120, 8.0),
                {"error": "boot"}]
        sm = r.idle_summary(runs)
        self.assertEqual((sm["ok"], sm["runs"]), (3, 4))
        self.assertEqual(sm["errors"], ["boot"])
        self.assertEqual(sm["footprint"]["med"], 110)
        self.assertAlmostEqual(sm["t90"]["med"], 4.0)
        self.assertIsNone(sm.get("daemon_cpu"))

    def test_never_ranks_last(self):
        sm = r.idle_summary([run(400, 0), run(100, 2.0), run(100, 3.0)])
        self.assertEqual(sm["t90s"].count(None), 1)
        self.assertEqual(sm["t90"]["n"], 3)
        self.assertAlmostEqual(sm["t90"]["med"], 3.0)
        self.assertEqual(r.idle_cell(sm["t90"], "t90", "%.1f"),
                         "3.0 (2.0-never)")

    def test_quartiles_with_never(self):
        inf = float("inf")
        st = r.b.stats([1, 2, 3, inf, inf])
        self.assertEqual((st["q1"], st["med"], st["q3"]), (2, 3, inf))

    def test_quartiles_as_statistics(self):
        import statistics
        for vals in ([1, 2], [1, 5, 6, 9], [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]):
            q = statistics.quantiles(vals, n=4, method="inclusive")
            st = r.b.stats(vals)
            self.assertAlmostEqual(st["q1"], q[0])
            self.assertAlmostEqual(st["q3"], q[2])


class Verdicts(unittest.TestCase):
    def sums(self, fh_runs):
        return {"none": r.idle_summary([run(400, 0)]),
                "qemu-report": r.idle_summary([run(100, 2.0)] * 3),
                "freehint": r.idle_summary(fh_runs)}

    def test_within_one_pass(self):
        v = r.verdicts(self.sums([run(100, 3.9)] * 3))
        self.assertIn("met", v[0])
        self.assertNotIn("NOT MET", v[0])
        self.assertNotIn("NOT MET", v[1])

    def test_later_than_one_pass(self):
        v = r.verdicts(self.sums([run(100, 4.2)] * 3))
        self.assertIn("NOT MET", v[1])

    def test_larger_footprint(self):
        v = r.verdicts(self.sums([run(120, 2.0)] * 3))
        self.assertIn("NOT MET", v[0])

    def test_mostly_never(self):
        v = r.verdicts(self.sums([run(100, 2.0), run(400, 0),
                                  run(400, 0)]))
        self.assertIn("NOT MET", v[1])
        self.assertIn("freehint never s", v[1])
        self.assertIn("2 freehint runs never reached 90%", v[1])

    def test_some_never_count(self):
        # 4 of 10 never: the median is the 5th and 6th of the ranked
        # runs, not of the 6 finite ones.
        runs = [run(100, t) for t in (1.0, 1.5, 2.0, 3.0, 4.4, 9.0)]
        runs += [run(400, 0)] * 4
        sm = r.idle_summary(runs)
        self.assertAlmostEqual(sm["t90"]["med"], (4.4 + 9.0) / 2)
        v = r.verdicts(self.sums(runs))
        self.assertIn("NOT MET", v[1])

    def test_all_failed(self):
        v = r.verdicts(self.sums([{"error": "x"}]))
        self.assertIn("not measured", v[0])

    def test_why_follows_the_medians(self):
        self.assertIn("same kernel", r.why(self.sums([run(100, 2.3)])))
        self.assertIn("rearms", r.why(self.sums([run(100, 4.0)])))

    def test_footprint_set_against_free_blocks(self):
        def mem(res, used, free_big, agent=None):
            res.update(used=used, free_big=free_big, agent_mem=agent)
            return res
        ref = r.idle_summary([mem(run(100, 2.0), 70, 400)] * 3)

        def why(fh_runs):
            sums = self.sums(fh_runs)
            sums["qemu-report"] = ref
            return r.why_footprint(sums), r.why(sums)
        w, full = why([mem(run(102, 2.0), 71, 400, 480)] * 3)
        self.assertIn(w, full)
        self.assertIn("used 71 MiB (its agent 480 KiB", w)
        self.assertIn("QEMU's used 70 MiB and had 400 MiB", w)
        self.assertIn("footprint was 2 MiB larger", w)
        # As many such blocks: nothing is said of why.
        self.assertNotIn("fewer such blocks", w)
        # Fewer reportable blocks, by about the difference.
        w, _ = why([mem(run(104, 2.0), 72, 396, 480)] * 3)
        self.assertIn("fewer such blocks", w)
        # Fewer, but not by the difference: nothing said of why.
        w, _ = why([mem(run(120, 2.0), 70, 396)] * 3)
        self.assertIn("footprint was 20 MiB larger", w)
        self.assertNotIn("fewer such blocks", w)
        self.assertNotIn("its agent", w)
        # Not measured (an older run's figures): nothing said.
        self.assertEqual(r.why_footprint(self.sums([run(100, 2.0)])), "")

    def test_fault_back(self):
        v = r.fault_back(self.sums([run(100, 2.0, refill=1500)]))
        self.assertIn("freehint 1500 ms (first 800 ms)", v[0])


class Band(unittest.TestCase):
    def test_median_and_spread(self):
        runs = [run(100, 2.0), run(200, 2.0), run(300, 2.0)]
        pts = dict((round(t, 1), (m, lo, hi))
                   for t, m, lo, hi in r.band(runs))
        self.assertEqual(pts[-1.0], (400, 400, 400))
        self.assertEqual(pts[5.0], (200, 100, 300))

    def test_failed_runs_ignored(self):
        self.assertEqual(r.band([{"error": "x"}]), [])


if __name__ == "__main__":
    unittest.main()
