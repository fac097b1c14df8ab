# SPDX-License-Identifier: GPL-2.0-only
"""Shared code of the benchmarks: the guest initramfs, one QEMU guest with
its QMP sockets, memory and CPU sampling, freehintd, and the Markdown,
table and plot output. Standard library only (python3 is a test dependency).
"""
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "bench")
DOCS = os.path.join(ROOT, "docs", "bench")
GUEST_PROGS = ("dirty", "frag", "churn", "memcheck")
# The checked workloads of tests/kmod (make kmod-tests), for the busy guest.
TEST_PROGS = ("fhchurn", "fhfill")
CHANNEL_NAME = "org.freehint.agent.0"
BENCH_PORT_NAME = "org.freehint.bench.0"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import Qmp  # noqa: E402


def kver():
    """The guest kernel: the newest /lib/modules entry with headers."""
    vers = [os.path.basename(os.path.dirname(b))
            for b in glob.glob("/lib/modules/*/build")]
    if not vers:
        sys.exit("bench: no kernel with headers under /lib/modules")
    return sorted(vers, key=lambda v: [int(x) if x.isdigit() else x
                                       for x in re.split(r"[.-]", v)])[-1]


def have_freehint():
    """Why freehint cannot be benchmarked yet, or None when it can."""
    need = {"kmod/freehint.ko": "make kmod",
            "build/freehint-agent": "make",
            "build/freehintd": "make"}
    missing = [p for p in need if not os.path.exists(os.path.join(ROOT, p))]
    if missing:
        return "not built: " + ", ".join(missing)
    return None


def build_initrd():
    """build/bench/initrd.cpio.gz (tests/guest/mkinitrd.sh): the workloads,
    bench/guest/scenario.sh, and freehint.ko with the agent when built."""
    # make bench builds the programs, not the module: a fresh tree has none.
    subprocess.run(["make", "-s", "-C", ROOT, "bench-guest", "kmod",
                    "kmod-tests"], check=True, stdout=subprocess.DEVNULL)
    out = os.path.join(OUT, "initrd.cpio.gz")
    args = [os.path.join(ROOT, "tests/guest/mkinitrd.sh"), "-o", out,
            "-s", os.path.join(ROOT, "bench/guest/scenario.sh")]
    for p in GUEST_PROGS:
        args += ["-b", os.path.join(OUT, "guest", p)]
    for p in TEST_PROGS:
        args += ["-b", os.path.join(ROOT, "build", "tests", "kmod", p)]
    if have_freehint() is None:
        args += ["-m", os.path.join(ROOT, "kmod/freehint.ko"),
                 "-b", os.path.join(ROOT, "build/freehint-agent")]
    subprocess.run(args, check=True)
    return out


def balloon_args(balloon):
    """QEMU's virtio-balloon for the reference configurations: hint
    (free-page-hint), report (free-page-reporting), hint+report or None."""
    if balloon is None:
        return []
    opts = {"hint": ["free-page-hint=on"],
            "report": ["free-page-reporting=on"],
            "hint+report": ["free-page-hint=on", "free-page-reporting=on"]}
    dev = ",".join(["virtio-balloon-pci"] + opts[balloon])
    if "hint" in balloon.split("+"):
        return ["-object", "iothread,id=io0", "-device", dev + ",iothread=io0"]
    return ["-device", dev]


class Vm:
    """One QEMU guest on a shared memfd, with two QMP sockets (one for the
    benchmark, one for freehintd) and the virtio-serial agent channel."""

    def __init__(self, name, run, mem_mib=512, balloon=None, freehint=False,
                 append="", accel="tcg", incoming=None, bench_port=False):
        self.name = name
        self.dir = os.path.join(OUT, "vm", name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.log = os.path.join(self.dir, "serial.log")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.qmp_daemon = os.path.join(self.dir, "qmp-freehintd.sock")
        self.channel = os.path.join(self.dir, "channel.sock")
        self.mem_mib = mem_mib
        self.accel = accel
        kv = kver()
        cmdline = "console=ttyS0 quiet panic=-1 bench.run=%s" % run
        if balloon:
            cmdline += " bench.balloon=1"
        if freehint:
            cmdline += " bench.freehint=1"
        cmdline += " " + append
        args = ["qemu-system-x86_64", "-machine", "pc,memory-backend=mem0",
                "-m", str(mem_mib), "-smp", "1",
                "-object", "memory-backend-memfd,id=mem0,size=%dM,share=on"
                % mem_mib,
                "-display", "none", "-no-reboot", "-nodefaults",
                "-serial", "file:" + self.log,
                "-kernel", "/boot/vmlinuz-" + kv,
                "-initrd", os.path.join(OUT, "initrd.cpio.gz"),
                "-append", cmdline.strip(),
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_daemon,
                "-device", "virtio-serial-pci",
                "-chardev", "socket,id=ch0,path=%s,server=on,wait=off"
                % self.channel,
                "-device", "virtserialport,chardev=ch0,name=" + CHANNEL_NAME]
        args += accel_args(accel) + balloon_args(balloon)
        if incoming:
            args += ["-incoming", incoming]
        # A second port for the benchmark's own requests to the guest.
        self.bench_sock = os.path.join(self.dir, "bench.sock")
        if bench_port:
            args += ["-chardev", "socket,id=ch1,path=%s,server=on,wait=off"
                     % self.bench_sock, "-device",
                     "virtserialport,chardev=ch1,name=" + BENCH_PORT_NAME]
        self.stderr = open(os.path.join(self.dir, "qemu.stderr"), "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr)
        self.pid = self.proc.pid
        self.daemon = None
        self._qmp = None
        self._backing = None

    def lines(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def wait(self, pattern, timeout=120, poll=0.05):
        """The first serial line matching pattern; raises on timeout."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.lines():
                if rx.search(line):
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(poll)
        raise RuntimeError("%s: no '%s' on the console (see %s)"
                           % (self.name, pattern, self.log))

    def value(self, key, pattern=None):
        """An integer from a "BENCH key=value" line (the last one)."""
        vals = [int(m.group(1)) for m in
                (re.search(r"\b%s=(\d+)" % key, ln) for ln in self.lines()
                 if ln.startswith("BENCH"))
                if m]
        if not vals:
            raise RuntimeError("%s: no %s on the console" % (self.name, key))
        return vals

    def qmp(self):
        if self._qmp is None:
            end = time.monotonic() + 10
            while True:
                try:
                    self._qmp = Qmp(self.qmp_path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.05)
        return self._qmp

    def status_kib(self, key):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self, pid=None):
        """User plus system CPU time of the QEMU process (or of pid)."""
        with open("/proc/%d/stat" % (pid or self.pid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def backing_bytes(self):
        """What the memfd of the guest's RAM holds allocated now
        (allocated_bytes): it falls as the host discards."""
        if not self._backing:
            self._backing = memfd_paths(self.pid)
            if not self._backing:
                raise RuntimeError("%s: no memfd open in QEMU (/proc/%d/fd)"
                                   % (self.name, self.pid))
        return allocated_bytes(self._backing)

    def daemon_cpu_seconds(self):
        """freehintd's CPU time: its parent and its worker (privsep)."""
        return tree_cpu_seconds(self.daemon.pid)

    def start_freehintd(self, extra=()):
        """freehintd for this one VM, in the foreground, logging to a file.
        Never a vsock listener: not on the build machine."""
        conf = "name=%s,qmp=%s,channel=%s" % (self.name, self.qmp_daemon,
                                              self.channel)
        self.control = os.path.join(self.dir, "ctl.sock")
        self.daemon_log = open(os.path.join(self.dir, "freehintd.log"), "w")
        self.daemon = subprocess.Popen(
            [os.path.join(ROOT, "build/freehintd"), "-d", "--vsock-port", "0",
             "--control", self.control, "--vm", conf] + list(extra),
            stdin=subprocess.DEVNULL, stdout=self.daemon_log,
            stderr=self.daemon_log)

    def freehintctl(self, *args):
        r = subprocess.run([os.path.join(ROOT, "build/freehintctl"), "-s",
                            self.control] + list(args),
                           capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout + r.stderr

    def fh_status(self):
        rc, out = self.freehintctl("status", "--json")
        # 6: a VM shows an error; the status is still printed.
        if rc not in (0, 6):
            raise RuntimeError("freehintctl status: " + out.strip())
        return json.loads(out)["vms"][0]

    def stop(self):
        if self._qmp is not None:
            try:
                self._qmp.cmd("quit")
            except (OSError, EOFError, RuntimeError):
                pass
        for p in (self.proc, self.daemon):
            if p is None:
                continue
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.stderr.close()


def freehint_hint(vm, timeout=60):
    """A freehint hint pass before a migration: asks until freehintd takes
    the command (it fails until the agent is welcomed), once, then waits
    until the held bytes stop growing. Returns (seconds, held bytes)."""
    t0 = time.monotonic()
    end = t0 + timeout
    while True:
        rc, out = vm.freehintctl("hint", vm.name)
        if rc == 0:
            break
        if time.monotonic() > end:
            raise RuntimeError("freehintctl hint: " + out.strip())
        time.sleep(0.2)
    held, last, stable, t_last = 0, -1, 0, time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        held = vm.fh_status().get("held_bytes", 0)
        if held != last:
            last, stable, t_last = held, 0, time.monotonic()
        elif held > 0:
            stable += 1
            if stable >= 5:
                return t_last - t0, held
    raise RuntimeError("hint pass: held %d bytes, never settled" % held)


# Output ---------------------------------------------------------------

def table(headers, rows):
    """A Markdown table (also readable as plain text)."""
    cells = [headers] + [[str(c) for c in r] for r in rows]
    width = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, width)) \
        + " |"
    out = [fmt(headers), "| " + " | ".join("-" * w for w in width) + " |"]
    out += [fmt(r) for r in cells[1:]]
    return "\n".join(out)


def commit():
    """The commit measured (short hash), "+" when the tree has changes."""
    full, dirty = head()
    return full[:12] + ("+" if dirty else "") if full else "unknown"


def head():
    """(full hash of HEAD or None, whether the tree has changes)."""
    try:
        h = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"],
                           capture_output=True, text=True,
                           check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet",
                                "HEAD"]).returncode != 0
        return h, dirty
    except (OSError, subprocess.CalledProcessError):
        return None, False


def ratio(a, b):
    return "n/a" if not b or a is None else "%.2f" % (a / b)


ACCELS = ("tcg", "kvm")


def add_accel(ap, guests=True):
    """--accel for a benchmark that boots guests (TCG by default here); one
    that boots none takes it too, so that bench/run.sh can hand it to
    all, and records no accelerator."""
    if guests:
        ap.add_argument("--accel", choices=ACCELS, default="tcg",
                        help="QEMU accelerator of every guest (default tcg)")
    else:
        ap.add_argument("--accel", choices=ACCELS, default=None,
                        help="accepted and ignored: no guest boots here")


def accel_args(accel):
    """QEMU's arguments for accel; exits when KVM is asked for and absent."""
    if accel == "kvm":
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            sys.exit("bench: --accel kvm: /dev/kvm is missing or not "
                     "usable here")
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg"]


def accel_name(accel):
    return {"tcg": "TCG (no KVM)", "kvm": "KVM", None: "no guest"}[accel]


def tree_pids(pid):
    """pid and its children: freehintd's parent and its worker."""
    pids = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return pids


def _tree_sum(pid, read):
    """read(p) summed over pid and its children; one that is gone is 0."""
    total = 0
    for p in tree_pids(pid):
        try:
            total += read(p)
        except OSError:
            pass
    return total


def _cpu_of(p):
    with open("/proc/%d/stat" % p) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hwm_of(p):
    with open("/proc/%d/status" % p) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _faults_of(p):
    """Minor plus major page faults of p, all its threads."""
    with open("/proc/%d/stat" % p) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[7]) + int(fields[9])


def tree_cpu_seconds(pid):
    """User plus system CPU time of pid and its children, while they run."""
    return _tree_sum(pid, _cpu_of)


def tree_faults(pid):
    """Minor plus major page faults of pid and its children, while they
    run (a fault on memory the host discarded is a minor one)."""
    return _tree_sum(pid, _faults_of)


def memfd_paths(pid, name="memory-backend-memfd"):
    """/proc/PID/fd entries of the guest RAM's memfd, one per file: the
    largest of those named after QEMU's backend (which QEMU keeps open;
    another memfd, such as TCG's split code buffer, is not RAM), or of
    all memfds when none has that name."""
    found = {}
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        path = os.path.join(d, fd)
        try:
            target = os.readlink(path)
            if not target.startswith("/memfd:"):
                continue
            st = os.stat(path)
        except OSError:
            continue
        named = target.split(" ")[0] == "/memfd:" + name
        found.setdefault((st.st_dev, st.st_ino), (named, st.st_size, path))
    if not found:
        return []
    best = max((named, size) for named, size, _ in found.values())
    return sorted(path for named, size, path in found.values()
                  if (named, size) == best)


def allocated_bytes(paths):
    """What the files hold allocated: st_blocks, which holes (discarded
    pages) do not count, as freehintd's vm_allocated_bytes counts it."""
    return sum(os.stat(p).st_blocks * 512 for p in paths)


def tree_hwm_kib(pid):
    """Peak resident memory (VmHWM) of pid and its children, summed."""
    return _tree_sum(pid, _hwm_of)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def machine(accel="tcg"):
    qemu = subprocess.run(["qemu-system-x86_64", "--version"],
                          capture_output=True, text=True).stdout.split("\n")[0]
    return "%s, %d CPUs, %s, guest kernel %s, %s" % (
        cpu_model(), os.cpu_count(), qemu, kver(), accel_name(accel))


def loadavg():
    """The 1, 5 and 15 minute load averages, as /proc/loadavg has them."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Provenance:
    """What a section measured: taken when a benchmark starts (before it
    builds anything, so that the commit is what runs) and closed when it
    writes its section. tests/checks.d/17-bench-provenance.sh reads the
    comment line; the sentence is for people."""

    def __init__(self, accel="tcg"):
        if accel:
            accel_args(accel)  # refuses a missing accelerator before work
        self.commit, self.dirty = head()
        self.date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        self.accel = accel
        self.load_before = loadavg()
        self.load_after = None

    def lines(self):
        if self.load_after is None:
            self.load_after = loadavg()
        return provenance_lines(self.commit or "unknown", self.dirty,
                                self.date, self.accel, self.load_before,
                                self.load_after)


def provenance_lines(commit, dirty, date, accel, before, after):
    return ["<!-- provenance commit=%s dirty=%s -->" % (
                commit, "yes" if dirty else "no"),
            "Measured at commit `%s`%s on %s; machine: %s, %d cores, %s; "
            "load average (1, 5, 15 min) before the run %s, after it %s." % (
                commit[:12], " with uncommitted changes" if dirty else "",
                date, cpu_model(), os.cpu_count(), accel_name(accel),
                before, after)]


def write_doc(name, text, prov):
    """docs/bench/NAME.md: text, with prov's lines under its heading."""
    lines = text.rstrip().split("\n")
    if not lines[0].startswith("## "):
        raise ValueError("a section starts with its '## ' heading")
    lines[1:1] = [""] + prov.lines()
    os.makedirs(DOCS, exist_ok=True)
    path = os.path.join(DOCS, name + ".md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", os.path.relpath(path, ROOT))


def gnuplot(script):
    if shutil.which("gnuplot") is None:
        print("bench: gnuplot missing, no plot")
        return False
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return True


def stats(vals):
    """Median, quartiles (inclusive method), lowest, highest, count."""
    vals = sorted(vals)
    if not vals:
        raise ValueError("no values")
    if len(vals) > 1:
        q1, q3 = quartile(vals, 1), quartile(vals, 3)
    else:
        q1 = q3 = vals[0]
    return {"med": statistics.median(vals), "q1": q1, "q3": q3,
            "lo": vals[0], "hi": vals[-1], "n": len(vals)}


def summarise(runs, keys=None):
    """One row from its runs: stats of each figure (keys, or those of the
    first run that completed) over the runs that completed, the count of
    the others, their errors."""
    ok = [r for r in runs if "error" not in r]
    row = {"runs": len(runs), "ok": len(ok),
           "errors": [r["error"] for r in runs if "error" in r]}
    for k in keys if keys is not None else (ok[0] if ok else {}):
        vals = [r[k] for r in ok if r.get(k) is not None]
        if vals:
            row[k] = stats(vals)
    return row


def quartile(vals, i):
    """Quartile i of sorted vals, as statistics.quantiles(n=4,
    method="inclusive") gives it, but an infinite value (a run that never
    got there) is taken as it is, never interpolated into nan."""
    m = len(vals) - 1
    j, delta = divmod(i * m, 4)
    if delta == 0 or vals[j + 1] == vals[j]:
        return vals[j]
    if vals[j + 1] == float("inf"):
        return float("inf")
    return (vals[j] * (4 - delta) + vals[j + 1] * delta) / 4


def cell(st, fmt):
    """A median with its spread: [q1-q3] from 5 runs on, (lowest-highest)
    below that; the median alone when every run gave the same."""
    if st is None:
        return "-"
    if st["lo"] == st["hi"]:
        return fmt % st["med"]
    if st["n"] >= 5:
        return (fmt + " [" + fmt + "-" + fmt + "]") % (st["med"], st["q1"],
                                                      st["q3"])
    return (fmt + " (" + fmt + "-" + fmt + ")") % (st["med"], st["lo"],
                                                  st["hi"])
