# The outer guest of tests/checks.d/43-vsock-nested.sh: it plays the host.
# The build machine's root over 9p (read-only) gives it freehintd and
# QEMU; vhost_vsock gives the inner guest CID 3. "FHO PASS|FAIL" lines
# are its cases.
say() { echo "FHO $*"; }
# mkinitrd's /init has loaded the virtio core already.
for ko in $(cat /outer-modules); do
	[ -d "/sys/module/${ko%.ko}" ] || insmod "/lib/freehint/$ko" ||
	    say "FAIL insmod $ko"
done
modprobe vsock_loopback
m=/mnt
mkdir -p $m
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot $m ||
	{ say "FAIL 9p"; exit 1; }
mount -t proc proc $m/proc
mount -t sysfs sys $m/sys
mount -t devtmpfs dev $m/dev
mount -t tmpfs tmp $m/tmp
mount -t tmpfs run $m/run
cp /inner.cpio.gz $m/tmp/
top=$(cat /fh-top) kv=$(cat /fh-kver)
inroot() { chroot $m "$@"; }
inroot "$top/build/freehintd" -d --control /run/ctl \
    --vm name=inner,qmp=/run/inner.qmp,cid=3 >$m/run/freehintd.log 2>&1 &
inroot timeout -s KILL 1100 qemu-system-x86_64 -accel tcg,tb-size=256 \
    -machine pc,memory-backend=mem0 \
    -object memory-backend-memfd,id=mem0,size=256M,share=on -m 256M \
    -smp 1 -nodefaults -display none -no-reboot \
    -serial file:/run/inner.log -bios /usr/share/qemu/qboot.rom \
    -kernel "/boot/vmlinuz-$kv" -initrd /tmp/inner.cpio.gz \
    -append "console=ttyS0 quiet mitigations=off nokaslr panic=-1" \
    -device vhost-vsock-pci,guest-cid=3 \
    -qmp unix:/run/inner.qmp,server=on,wait=off -pidfile /run/inner.pid \
    >$m/run/qemu.out 2>&1 &
# wait_inner STEP SECONDS
wait_inner() {
	i=0
	until grep -q "FHI $1" $m/run/inner.log 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt "$2" ] && return 1
		sleep 1
	done
}
rss() { sed -n 's/^RssShmem:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$(cat $m/run/inner.pid)/status"; }
say STARTED-INNER
if wait_inner CONNECTED 1000; then
	st=$(inroot "$top/build/freehintctl" -s /run/ctl status)
	echo "$st"
	if echo "$st" | grep -q '^inner *vsock'; then
		say "PASS status-vsock"
	else
		say "FAIL status-vsock: $st"
	fi
	grep -q "vm inner (vsock): connected" $m/run/freehintd.log &&
	    say "PASS identified-by-cid" || say "FAIL identified-by-cid"
fi
if wait_inner FILLED 600; then
	before=$(rss)
	wait_inner FREED 300
	after=$before i=0
	while [ $i -lt 180 ] && [ $((before - after)) -lt 40960 ]; do
		sleep 1
		i=$((i + 1))
		after=$(rss)
	done
	if [ $((before - after)) -ge 40960 ]; then
		say "PASS rss-drop ($(((before - after) / 1024)) MiB)"
	else
		say "FAIL rss-drop: RssShmem $before -> $after kB"
	fi
else
	say "FAIL inner: no FHI FILLED"
fi
# CID 1 (this guest, over vsock_loopback) belongs to no VM: refused.
inroot python3 -c '
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.settimeout(20)
s.connect((1, 7700))
s.send(b"\0" * 16)
print("unknown-cid got", len(s.recv(4096)), "bytes")' 2>&1
sleep 1
grep -q "connection from unknown cid 1 refused" $m/run/freehintd.log &&
    say "PASS unknown-cid-refused" || say "FAIL unknown-cid-refused"
echo "--- inner QEMU"
cat $m/run/qemu.out
echo "--- inner"
cat $m/run/inner.log
echo "--- freehintd"
cat $m/run/freehintd.log
kill "$(cat $m/run/inner.pid)" 2>/dev/null
say DONE
