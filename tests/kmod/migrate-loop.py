#!/usr/bin/env python3
"""Live-migrate a busy TCG guest back and forth between fresh QEMUs.

    tests/kmod/migrate-loop.py [-n HOPS] [-s] [-o DIR] MODE [MODE...]

Not part of `make check`: a reproduction tool for guest crashes after
migrations (see docs/kmod.md, "Live migration"). Builds an initramfs with
freehint.ko, fhmem, fhbusy and freehint-agent (make kmod kmod-tests first),
boots it (512 MiB, memfd RAM as run-guest.sh gives it), then HOPS times:
starts a destination with -incoming tcp:127.0.0.1:PORT, migrates with QMP
`migrate`, quits the source and checks for 4 s that the destination's guest
still runs and printed no oops. MODE is a mig.mode of guest-migrate.sh
(none is the control without the module). -s stops the guest during each
migration (stop-and-copy, `cont` on the destination). Serial logs (full
console, oops=panic) in DIR/MODE/serialN.log. One line per hop, then
"RESULT MODE clean HOPS" or "RESULT MODE crash HOP"; exits 3 on a crash.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BAD = re.compile(r"BUG:|Oops|Kernel panic|general protection|WARNING:")


def kver():
    return subprocess.check_output([f"{ROOT}/tests/guest/kver.sh"], text=True).strip()


class Qemu:
    def __init__(self, d, i, initrd, mode, incoming=None):
        self.log = f"{d}/serial{i}.log"
        qmp = f"{d}/qmp{i}.sock"
        for p in (qmp, self.log):
            if os.path.exists(p):
                os.unlink(p)
        args = ["qemu-system-x86_64",
                "-machine", "pc,accel=tcg,memory-backend=mem0",
                "-object", "memory-backend-memfd,id=mem0,size=512M,share=on",
                "-m", "512M", "-smp", "1", "-nic", "none", "-display", "none",
                "-no-reboot", "-serial", f"file:{self.log}",
                "-kernel", f"/boot/vmlinuz-{kver()}", "-initrd", initrd,
                "-append", "console=ttyS0 panic=-1 oops=panic panic_on_warn=0 "
                f"init_on_alloc=0 mig.mode={mode}",
                "-qmp", f"unix:{qmp},server=on,wait=off",
                "-device", "virtio-serial-pci", "-chardev",
                f"socket,id=fhch0,path={d}/chan{i}.sock,server=on,wait=off",
                "-device", "virtserialport,chardev=fhch0,name=org.freehint.agent.0"]
        if incoming:
            args += ["-incoming", incoming]
        with open(f"{self.log}.qemu", "w") as out:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        for _ in range(100):
            if os.path.exists(qmp):
                break
            time.sleep(0.1)
        s = socket.socket(socket.AF_UNIX)
        s.connect(qmp)
        self.f = s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r

    def beats(self):
        try:
            with open(self.log, errors="replace") as f:
                text = f.read()
        except OSError:
            return 0, ""
        b = re.findall(r"FHMIG beat (\d+)", text)
        return (int(b[-1]) if b else 0), text


def run(mode, hops, stop, d, initrd, port):
    os.makedirs(d, exist_ok=True)
    src = Qemu(d, 0, initrd, mode)
    t0 = time.time()
    while src.beats()[0] < 5:
        if src.proc.poll() is not None or time.time() - t0 > 120:
            print(f"RESULT {mode} boot-failed", flush=True)
            return 1
        time.sleep(0.5)
    for i in range(1, hops + 1):
        uri = f"tcp:127.0.0.1:{port + i % 2}"
        dst = Qemu(d, i, initrd, mode, uri)
        src.cmd("migrate-set-parameters", **{"max-bandwidth": 4 << 30})
        if stop:
            src.cmd("stop")
        src.cmd("migrate", uri=uri)
        ts = time.time()
        while True:
            st = src.cmd("query-migrate")["return"].get("status")
            if st in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.2)
        secs = time.time() - ts
        src.cmd("quit")
        src.proc.wait()
        if st != "completed":
            print(f"RESULT {mode} migrate-{st} {i}", flush=True)
            dst.proc.kill()
            return 1
        if stop:
            dst.cmd("cont")
        b0 = dst.beats()[0]
        time.sleep(4)
        b1, text = dst.beats()
        ok = dst.proc.poll() is None and b1 > b0 + 1 and not BAD.search(text)
        print(f"{mode} hop {i} {secs:.1f}s beats {b0}->{b1} "
              f"{'ok' if ok else 'CRASH ' + dst.log}", flush=True)
        src = dst
        if not ok:
            src.proc.kill()
            print(f"RESULT {mode} crash {i}", flush=True)
            return 3
    src.cmd("quit")
    src.proc.wait()
    print(f"RESULT {mode} clean {hops}", flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20, help="migrations (20)")
    ap.add_argument("-s", action="store_true", help="stop-and-copy")
    ap.add_argument("-o", default=f"{ROOT}/build/kmod-migrate")
    ap.add_argument("modes", nargs="+")
    a = ap.parse_args()
    os.makedirs(a.o, exist_ok=True)
    initrd = f"{a.o}/migrate.cpio.gz"
    b = f"{ROOT}/build/tests/kmod"
    subprocess.check_call([f"{ROOT}/tests/guest/mkinitrd.sh", "-o", initrd,
                           "-m", f"{ROOT}/kmod/freehint.ko",
                           "-b", f"{b}/fhmem", "-b", f"{b}/fhbusy",
                           "-b", f"{ROOT}/build/freehint-agent",
                           "-s", f"{ROOT}/tests/kmod/guest-migrate.sh"],
                          stdout=subprocess.DEVNULL)
    rc = 0
    for k, mode in enumerate(a.modes):
        rc = max(rc, run(mode, a.n, a.s, f"{a.o}/{mode}", initrd,
                         47100 + 2 * k + 20 * (os.getpid() % 40)))
    return rc


if __name__ == "__main__":
    sys.exit(main())
