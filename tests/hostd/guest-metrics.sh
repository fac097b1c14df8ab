# Guest side of tests/checks.d/57-hostd-prometheus.sh: dirty 200 MiB,
# hold it a while (the host scrapes), free it; "FH <step>" marks each.
insmod /lib/freehint/freehint.ko || exit 1
mount -o remount,size=300M /tmp
dd if=/dev/urandom of=/run/seed bs=1M count=1 2>/dev/null
freehint-agent -d --transport virtio-serial >/run/agent.log 2>&1 &
sleep 2
i=0
while [ $i -lt 200 ]; do cat /run/seed; i=$((i + 1)); done >/tmp/fill
echo "FH FILLED"
sleep 6
rm -f /tmp/fill
echo "FH FREED"
sleep 120
