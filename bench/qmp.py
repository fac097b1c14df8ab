#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Minimal QMP client for the benchmarks (standard library only).

  qmp.py SOCK COMMAND [JSON-ARGUMENTS]   run one command, print its return
  qmp.py SOCK migrate-wait URI [TIMEOUT]  migrate, poll query-migrate every
                                          100 ms, print the final status
"""
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.recv()  # greeting
        self.cmd("qmp_capabilities")

    def recv(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("QMP socket closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            msg = self.recv()
            if "event" in msg:
                continue
            if "error" in msg:
                raise RuntimeError("%s: %s" % (name, msg["error"]))
            return msg["return"]


def migrate_wait(q, uri, timeout):
    q.cmd("migrate", {"uri": uri})
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = q.cmd("query-migrate")
        if st.get("status") in ("failed", "cancelled"):
            return st
        # QEMU 7.2 sets "completed" a moment before it computes the
        # totals: a query in between reads total-time 0.
        if st.get("status") == "completed" and st.get("total-time"):
            return st
        time.sleep(0.1)
    q.cmd("migrate_cancel")
    raise RuntimeError("migration did not finish in %d s" % timeout)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    q = Qmp(sys.argv[1])
    if sys.argv[2] == "migrate-wait":
        timeout = int(sys.argv[4]) if len(sys.argv) > 4 else 300
        print(json.dumps(migrate_wait(q, sys.argv[3], timeout)))
        return
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(q.cmd(sys.argv[2], args)))


if __name__ == "__main__":
    main()
