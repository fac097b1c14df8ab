#!/usr/bin/env python3
# qmp.py SOCK hmp 'CMD' | SOCK exec NAME [JSON-ARGS]: one QMP command on a
# monitor socket of the test's own; prints the "return" value.
import json, socket, sys

s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()


def cmd(name, args=None):
    m = {"execute": name}
    if args is not None:
        m["arguments"] = args
    f.write(json.dumps(m) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r:
            return r["return"]
        if "error" in r:
            sys.exit("qmp: " + json.dumps(r["error"]))


cmd("qmp_capabilities")
if sys.argv[2] == "hmp":
    print(cmd("human-monitor-command", {"command-line": sys.argv[3]}))
else:
    args = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
    print(json.dumps(cmd(sys.argv[3], args)))
