# The inner guest of tests/checks.d/43-vsock-nested.sh: freehint.ko and
# freehint-agent over AF_VSOCK only (virtio transport, to the outer
# guest's freehintd at CID 2); dirties and frees memory; "FHI <step>"
# lines mark the steps on its console.
echo "FHI BOOTED"
modprobe vmw_vsock_virtio_transport || exit 1
# TCG inside TCG is slow: longer leases (the contract is the same) so that
# the host is not too late to discard.
insmod /lib/freehint/freehint.ko report_timeout_ms=60000 \
    report_grace_ms=60000 || exit 1
freehint-agent -d --transport vsock >/run/agent.log 2>&1 &
i=0
until grep -q "connected over" /run/agent.log || [ $i -ge 120 ]; do
	sleep 1
	i=$((i + 1))
done
cat /run/agent.log
echo "FHI CONNECTED"
dd if=/dev/zero of=/tmp/fill bs=1M count=96 2>/dev/null
echo "FHI FILLED"
sleep 3
rm -f /tmp/fill
echo "FHI FREED"
sleep 300
cat /run/agent.log
