#!/bin/sh
# freehintd's metrics scraped by a real Prometheus (Debian's) while a real
# guest (freehint.ko + agent, memfd RAM) dirties and frees 200 MiB: the
# exposition passes promtool before and after, Prometheus' HTTP API gives
# the reclaimed counter freehintctl status --json shows, and what is
# returned now grows by most of what the guest freed.
set -u
cd "$(dirname "$0")/../.." || exit 1
FHROOT=$(pwd)
. tests/hostd/e2e.sh
guest_require hostd-prometheus
command -v prometheus >/dev/null && command -v promtool >/dev/null ||
    skip hostd-prometheus "no prometheus (scripts/install-deps.sh test)"
step_make hostd-prometheus all kmod

d=$(mktemp -d /tmp/fh-prom.XXXXXX)
dpid= ppid=
trap 'kill $dpid $ppid 2>/dev/null
qemu_kill "$d" qemu
wait 2>/dev/null; rm -rf "$d"' EXIT
ctl="build/freehintctl -s $d/ctl"
freeport() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
mport=$(freeport)
pport=$(freeport)
status() {
	$ctl status --json | python3 -c "import json, sys
v = json.load(sys.stdin)['vms'][0]
print(v['$1'])"
}
scrape() {
	python3 -c "import urllib.request, sys
sys.stdout.write(urllib.request.urlopen(
    'http://127.0.0.1:$mport/metrics', timeout=10).read().decode())"
}
# promql QUERY: the value of the query's first series, or nothing.
promql() {
	python3 - "$pport" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
u = "http://127.0.0.1:%s/api/v1/query?query=%s" % (
    sys.argv[1], urllib.parse.quote(sys.argv[2]))
r = json.load(urllib.request.urlopen(u, timeout=10))
if r["status"] == "success" and r["data"]["result"]:
    print(r["data"]["result"][0]["value"][1])
PY
}

guest_build "$d/initrd.cpio.gz" -m kmod/freehint.ko -b build/freehint-agent \
    -s tests/hostd/guest-metrics.sh >"$d/mkinitrd.log" 2>&1 ||
    { fail hostd-prometheus "initrd build failed"; exit 1; }
tests/guest/run-guest.sh -b -m 384 -t 200 -q "$d/qmp" -c "$d/chan" \
    -p "$d/qemu.pid" -i "$d/initrd.cpio.gz" -l "$d/guest.log" ||
    { fail hostd-prometheus "guest did not start"; exit 1; }
build/freehintd -d --vsock-port 0 --control "$d/ctl" \
    --metrics-listen "127.0.0.1:$mport" \
    --vm "name=pm,qmp=$d/qmp,channel=$d/chan" >"$d/freehintd.log" 2>&1 &
dpid=$!
cat >"$d/prometheus.yml" <<EOF2
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: freehint
    static_configs:
      - targets: ['127.0.0.1:$mport']
EOF2
prometheus --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/tsdb" \
    --web.listen-address="127.0.0.1:$pport" >"$d/prometheus.log" 2>&1 &
ppid=$!

if ! e2e_wait_log "$d/guest.log" "FH FILLED" 120; then
	fail hostd-prometheus "the guest did not fill its memory"
	tail -n 20 "$d/freehintd.log" "$d/guest.log"
	exit 1
fi
sleep 2
scrape >"$d/m0" && promtool check metrics <"$d/m0" >"$d/m0.check" 2>&1 &&
    pass hostd-prometheus:promtool-before ||
    fail hostd-prometheus:promtool-before "$(cat "$d/m0.check")"
filled=$(status returned_bytes)
e2e_wait_log "$d/guest.log" "FH FREED" 60 ||
    { fail hostd-prometheus "the guest did not free its memory"; exit 1; }
# Until the reclaim settles: the counter still for 3 s.
last=-1 same=0 n=0
while [ $same -lt 3 ] && [ $n -lt 60 ]; do
	sleep 1
	now=$(status reclaimed_bytes)
	[ "$now" = "$last" ] && same=$((same + 1)) || same=0
	last=$now n=$((n + 1))
done
scrape >"$d/m1" && promtool check metrics <"$d/m1" >"$d/m1.check" 2>&1 &&
    pass hostd-prometheus:promtool-after ||
    fail hostd-prometheus:promtool-after "$(cat "$d/m1.check")"
freed=$(status returned_bytes)
if [ $((freed - filled)) -ge $((150 << 20)) ]; then
	pass "hostd-prometheus:returned-grows ($((filled >> 20)) -> $((freed >> 20)) MiB)"
else
	fail hostd-prometheus:returned-grows "returned $filled -> $freed bytes"
fi
# Prometheus' last scrape is at most a second old: ask until it has one
# of the settled value.
want=$(status reclaimed_bytes) got= n=0
while [ $n -lt 30 ]; do
	got=$(promql 'freehint_reclaimed_bytes_total{vm="pm"}' 2>/dev/null)
	[ "$got" = "$want" ] && break
	n=$((n + 1))
	sleep 1
done
if [ "$got" = "$want" ] && [ "$want" -ge $((100 << 20)) ]; then
	pass "hostd-prometheus:api-equals-status ($((want >> 20)) MiB)"
else
	fail hostd-prometheus:api-equals-status "prometheus '$got', status '$want'"
	tail -n 5 "$d/prometheus.log"
fi
# Scraped while the guest freed: the series took several values.
ch=$(promql 'changes(freehint_reclaimed_bytes_total{vm="pm"}[10m])' 2>/dev/null)
if [ "${ch:-0}" -ge 1 ] 2>/dev/null; then
	pass "hostd-prometheus:scraped-while-freeing ($ch changes)"
else
	fail hostd-prometheus:scraped-while-freeing "changes: '${ch:-}'"
fi
up=$(promql 'up{job="freehint"}' 2>/dev/null)
[ "$up" = 1 ] && pass hostd-prometheus:target-up ||
    fail hostd-prometheus:target-up "up '$up'"
kill "$dpid"
wait "$dpid" && pass hostd-prometheus:daemon-exit ||
    fail hostd-prometheus:daemon-exit "freehintd exited badly"
dpid=
exit "${FH_FAILED:-0}"
