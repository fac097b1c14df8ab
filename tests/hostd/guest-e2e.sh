# Guest side of the host daemon's end-to-end run (tests/hostd/e2e.sh):
# dirty and free memory with the agent running, then again with the agent
# stopped, then start the agent again; "FH <step>" lines mark the steps.
insmod /lib/freehint/freehint.ko || exit 1
mount -o remount,size=460M /tmp
dd if=/dev/urandom of=/run/seed bs=1M count=1 2>/dev/null
fill() {
	i=0
	while [ $i -lt "$1" ]; do cat /run/seed; i=$((i + 1)); done >/tmp/fill
	rm -f /tmp/fill
}
agent() { freehint-agent -d --transport virtio-serial >/run/agent.log 2>&1 & }
agent
sleep 2
echo "FH FILL1"
fill 300
echo "FH FREED1"
sleep 6
kill %1
wait
sleep 3
fill 300
echo "FH FREED2"
# The host migrates without freehint now, then says go by ... time.
sleep 15
agent
echo "FH AGENT2"
sleep 60
cat /run/agent.log
