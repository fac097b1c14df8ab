#!/bin/sh
# freehintd follows migrations of static VMs (--vm) through real QEMU
# monitors (firmware-only guests, migrations held open by a slow pipe),
# with the plain daemon and then the ASan+UBSan build:
#  events:   freehintd turns on the "events" migration capability and
#            sees a migration start and end from the MIGRATION events;
#  fallback: a migration already running when freehintd connects makes
#            QEMU refuse the capability; freehintd polls query-migrate,
#            sees that migration end, then asks again and gets events.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/hostd/lib.sh

qemu_require hostd-migration
step_make hostd-migration all

t=
dpid=
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	[ -n "$t" ] && qemu_kill "$t" e f && rm -rf "$t"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

qmp() { tests/hostd/qmp.py "$@"; }
# migrate VM SECONDS: a migration that stays active for about SECONDS.
migrate() {
	qmp "$t/$1.qmp2" exec migrate \
	    "{\"uri\": \"exec:sleep $2; cat >/dev/null\"}" >/dev/null
}
migrated() { qmp "$t/$1.qmp2" exec query-migrate | grep -q '"completed"'; }
events_on() {
	qmp "$t/$1.qmp2" exec query-migrate-capabilities | python3 -c '
import json, sys
caps = {c["capability"]: c["state"] for c in json.load(sys.stdin)}
sys.exit(0 if caps["events"] else 1)'
}
logged() { [ "$(grep -c "vm $1: $2" "$t/d.log")" -ge "$3" ]; }
daemon() {
	"$freehintd" -d --vsock-port 0 --control "$t/ctl" \
	    --vm "name=e,qmp=$t/e.qmp" --vm "name=f,qmp=$t/f.qmp" \
	    >>"$t/d.log" 2>&1 &
	dpid=$!
}

# scenario LABEL FREEHINTD: the whole sequence with fresh VMs.
scenario() {
	label=$1 freehintd=$2
	t=$(mktemp -d /tmp/fh-mig.XXXXXX)
	for n in e f; do
		vm_start "$t" $n 64M \
		    -object memory-backend-memfd,id=mem0,size=64M,share=on ||
		    { fail "hostd-migration-$label" "qemu did not start"; return; }
	done
	# VM f is migrating before freehintd first connects to it.
	migrate f 4
	daemon

	if wait_for 5 events_on e && wait_for 5 logged e "monitor" 1; then
		pass hostd-migration-$label:events-capability
	else
		fail hostd-migration-$label:events-capability "$(tail -n 5 "$t/d.log")"
	fi
	migrate e 2
	if wait_for 2 logged e "migration started" 1; then
		pass hostd-migration-$label:events-started
	else
		fail hostd-migration-$label:events-started "$(tail -n 5 "$t/d.log")"
	fi
	if wait_for 10 migrated e && wait_for 2 logged e "migration finished" 1; then
		pass hostd-migration-$label:events-finished
	else
		fail hostd-migration-$label:events-finished "$(tail -n 5 "$t/d.log")"
	fi
	# No query-migrate poll for e: the log says so only for VMs that poll.
	if grep -q "vm e: no migration events" "$t/d.log"; then
		fail hostd-migration-$label:events-no-poll "$(grep "vm e:" "$t/d.log")"
	else
		pass hostd-migration-$label:events-no-poll
	fi

	if grep -q "vm f: no migration events" "$t/d.log" &&
	    wait_for 3 logged f "migration started" 1; then
		pass hostd-migration-$label:fallback-started
	else
		fail hostd-migration-$label:fallback-started "$(grep "vm f:" "$t/d.log")"
	fi
	if wait_for 15 migrated f && wait_for 2 logged f "migration finished" 1 &&
	    wait_for 2 events_on f; then
		pass hostd-migration-$label:fallback-finished-then-events
	else
		fail hostd-migration-$label:fallback-finished-then-events "$(grep "vm f:" "$t/d.log")"
	fi
	qmp "$t/f.qmp2" exec cont >/dev/null
	migrate f 1
	if wait_for 2 logged f "migration started" 2 &&
	    wait_for 10 logged f "migration finished" 2 &&
	    [ "$(grep -c "vm f: no migration events" "$t/d.log")" = 1 ]; then
		pass hostd-migration-$label:fallback-second-by-events
	else
		fail hostd-migration-$label:fallback-second-by-events "$(grep "vm f:" "$t/d.log")"
	fi

	# QEMU going away in the middle of a migration ends it for freehintd.
	qmp "$t/e.qmp2" exec cont >/dev/null
	migrate e 5
	wait_for 2 logged e "migration started" 2
	kill "$(cat "$t/e.pid")"
	if wait_for 3 logged e "migration finished" 2 && kill -0 "$dpid"; then
		pass hostd-migration-$label:qemu-gone
	else
		fail hostd-migration-$label:qemu-gone "$(grep "vm e:" "$t/d.log")"
	fi
	kill "$dpid"
	wait "$dpid"
	rc=$?
	dpid=
	if [ $rc = 0 ]; then
		pass hostd-migration-$label:daemon-exit
	else
		fail hostd-migration-$label:daemon-exit "status $rc: $(tail -n 5 "$t/d.log")"
	fi
	cleanup
	t=
}

scenario plain build/freehintd
if make -s SAN=1 all >/dev/null 2>&1; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	scenario asan build-san/freehintd
else
	fail hostd-migration-asan "SAN=1 build"
fi
exit "${FH_FAILED:-0}"
