# Guest side of tests/checks.d/57-hostd-postcopy.sh: the module and the
# agent over virtio-serial; 32 MiB kept in tmpfs whose checksum is printed
# ("FH SUM x") after every round of dirtying and freeing 64 MiB, so that
# page reporting keeps sending while the guest is migrated.
insmod /lib/freehint/freehint.ko || exit 1
dd if=/dev/urandom of=/tmp/keep bs=1M count=32 2>/dev/null
dd if=/dev/urandom of=/run/seed bs=1M count=1 2>/dev/null
freehint-agent -d -v --transport virtio-serial >/run/agent.log 2>&1 &
echo "FH AGENT"
i=0
while [ $i -lt 1000 ]; do
	j=0
	while [ $j -lt 64 ]; do cat /run/seed; j=$((j + 1)); done >/tmp/fill
	rm -f /tmp/fill
	echo "FH SUM $(sha256sum /tmp/keep | cut -c1-64)"
	sleep 1
	i=$((i + 1))
done
