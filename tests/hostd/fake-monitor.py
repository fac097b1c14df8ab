#!/usr/bin/env python3
# fake-monitor.py MODE SOCK: a QMP monitor that is stuck, until killed.
#   silent: accepts connections and never writes a byte
#   mute:   greets and negotiates capabilities, then answers nothing
#   full:   listens with a full backlog (its own connections) and never
#           accepts
import json, os, select, signal, socket, sys

mode, path = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
try:
    os.unlink(path)
except FileNotFoundError:
    pass
l = socket.socket(socket.AF_UNIX)
l.bind(path)
if mode == "full":
    l.listen(0)
    keep = []
    while True:
        c = socket.socket(socket.AF_UNIX)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            c.close()
            break
        keep.append(c)
    print("backlog full after %d connections" % len(keep), flush=True)
    signal.pause()
l.listen(8)
conns = []
while True:
    r, _, _ = select.select([l] + conns, [], [])
    for s in r:
        if s is l:
            c, _ = l.accept()
            conns.append(c)
            if mode == "mute":
                c.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, '
                          b'"minor": 2, "major": 7}}, "capabilities": []}}\r\n')
            continue
        data = s.recv(65536)
        if not data:
            conns.remove(s)
            s.close()
            continue
        if mode != "mute":
            continue
        for line in data.splitlines():
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if m.get("execute") == "qmp_capabilities":
                s.sendall(json.dumps({"return": {}, "id": m.get("id")})
                          .encode() + b"\r\n")
