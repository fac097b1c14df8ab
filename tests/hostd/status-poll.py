#!/usr/bin/env python3
# status-poll.py CTL SECONDS OUT: asks freehintd for "status" every 200 ms
# for SECONDS, as a watchdog would, and writes to OUT the slowest answer
# (ms), the number of answers, and the last answer's JSON. A request that
# gets no answer within 10 s counts as 10000 ms.
import json, socket, sys, time

ctl, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
end = time.monotonic() + seconds
worst, n, last = 0.0, 0, "{}"
while time.monotonic() < end:
    t0 = time.monotonic()
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(ctl)
        s.sendall(b"status\n")
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(65536)
            if not d:
                break
            buf += d
        s.close()
        json.loads(buf)
        last = buf.decode().strip()
        n += 1
        dt = (time.monotonic() - t0) * 1000
    except (OSError, ValueError):
        dt = 10000.0 if time.monotonic() - t0 >= 9.9 else 0.0
        if dt == 0.0:
            # Not listening yet (the daemon starting): not a stall.
            time.sleep(0.2)
            continue
    worst = max(worst, dt)
    time.sleep(max(0.0, 0.2 - (time.monotonic() - t0)))
with open(out, "w") as f:
    f.write("%d %d\n%s\n" % (worst, n, last))
