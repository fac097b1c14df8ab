#!/usr/bin/env python3
# backing.py PID SIZE sum|fill|extents OFF LEN: a QEMU's memfd RAM backing
# of SIZE bytes (found through /proc/PID/fd), read or written from here:
#   sum      sha256 of [OFF, OFF+LEN), then "zero" or "data"
#   fill     write a pattern over [OFF, OFF+LEN)
#   extents  the data (not hole) extents in [OFF, OFF+LEN), "OFF+LEN ..."
import errno, hashlib, os, sys

pid, size, what, off, ln = sys.argv[1], int(sys.argv[2], 0), sys.argv[3], \
    int(sys.argv[4], 0), int(sys.argv[5], 0)
path = None
for fd in os.listdir("/proc/%s/fd" % pid):
    p = "/proc/%s/fd/%s" % (pid, fd)
    try:
        if os.readlink(p).startswith("/memfd:") and os.stat(p).st_size == size:
            path = p
            break
    except OSError:
        pass
if path is None:
    sys.exit("no memfd of %d bytes in QEMU %s" % (size, pid))
f = os.open(path, os.O_RDWR if what == "fill" else os.O_RDONLY)
if what == "sum":
    b = os.pread(f, ln, off)
    print(hashlib.sha256(b).hexdigest(), "zero" if b == bytes(ln) else "data")
elif what == "fill":
    os.pwrite(f, bytes([0xa5, 0x5a, 0x3c, 0xc3]) * (ln // 4), off)
else:
    out, pos, end = [], off, off + ln
    while pos < end:
        try:
            d = os.lseek(f, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            break
        if d >= end:
            break
        h = min(os.lseek(f, d, os.SEEK_HOLE), end)
        out.append("%#x+%#x" % (d, h - d))
        pos = h
    print(" ".join(out))
