/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehint-loadgen: the scale benchmark's load generator. It plays N
 * virtual machines for one freehintd: for each it serves the two unix
 * sockets freehintd connects to (the QMP monitor and the virtio-serial
 * channel) and behaves as the guest agent on the channel, sending
 * REPORTED batches and timing their Acks. Each VM's RAM is a real memfd
 * mapped shared in this process, so freehintd resolves it through
 * gpa2hva and /proc/PID/maps exactly as for QEMU and really punches the
 * holes (every page of each range is written before it is sent, as a
 * guest's free memory once was, so that each punch frees what it claims;
 * -F: only the first page of each, -T: never written). The QMP side answers
 * only what freehintd asks (capabilities, migrate-set-capabilities,
 * query-migrate, qom-get of the backend and the machine type, info mtree
 * -f, gpa2hva).
 *
 *   freehint-loadgen -n VMS -d DIR [-m RAM_MIB] [-r RANGES] [-t SECONDS]
 *                    [-w CONNECT_TIMEOUT] [-R BATCHES_PER_SEC] [-F|-T]
 *                    [-o FIRST] [-L LATENCY_FILE] [-s SETTLE_SECONDS]
 *
 * Writes DIR/freehintd.conf (DIR/freehintd.FIRST.conf with -o: VMs
 * vmFIRST on, so that several generators, each a process as each QEMU
 * is, can serve one daemon) for the daemon, prints "loadgen: listening",
 * runs until every VM is welcomed (or the timeout), waits SETTLE_SECONDS,
 * sends for SECONDS
 * (as fast as the Acks allow, or -R batches a second per VM),
 * drains, and prints one "key value" line per figure. Latency figures are
 * of applied batches only; rejected ones are counted apart. -L writes
 * every latency (ms, one a line) for the caller to merge.
 */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common.h"

#define LG_INFLIGHT_MAX 64
#define LG_ORDER        9 /* 2 MiB blocks, the kernel's reporting order */
/* What the guest kernel gives the host to ack a report (report_timeout). */
#define LG_LEASE_MS 5000

struct lg_vm {
	int idx;
	uint8_t *ram;
	uint64_t ram_bytes;
	struct evconnlistener *qmp_l;
	struct evconnlistener *chan_l;
	struct bufferevent *qmp;
	struct fh_peer *peer;
	bool welcomed;
	int64_t clock_off_ms; /* the daemon's clock less ours */
	uint32_t max_inflight;
	uint32_t inflight;
	uint64_t next_id;
	uint64_t next_block; /* rotates through the RAM */
	double credit; /* batches it may send now, when paced */
	struct {
		uint64_t id;
		double sent;
	} fly[LG_INFLIGHT_MAX];
	uint64_t acked, rejected, ranges;
	double lat_sum, lat_max;
	double *lat; /* every latency, for percentiles */
	size_t nlat, caplat;
};

static struct event_base *base;
/*
 * QEMU answers its monitor in its own thread, whatever the guest does:
 * the QMP side runs on its own base and thread, so that freehintd's
 * monitor queries never wait behind the agents' traffic.
 */
static struct event_base *qbase;
static struct lg_vm *vms;
static int nvms, nranges = 16, seconds = 10, connect_timeout = 60, settle;
static uint64_t ram_mib = 64;
static double rate; /* batches a second per VM; 0: as fast as acked */
static enum { TOUCH_ALL, TOUCH_FIRST, TOUCH_NONE } touch;
static int nwelcomed;
static bool sending, draining;
static double t_start, t_stop;
static char *reject_last;
static const char *lat_file;

static void usage(void) __attribute__((noreturn));
static double now(void);
static int listen_at(struct lg_vm *, const char *dir, const char *what,
    struct evconnlistener **);
static void qmp_accept(
    struct evconnlistener *, evutil_socket_t, struct sockaddr *, int, void *);
static void qmp_read(struct bufferevent *, void *);
static void qmp_event(struct bufferevent *, short, void *);
static void qmp_answer(struct lg_vm *, const char *);
static void chan_accept(
    struct evconnlistener *, evutil_socket_t, struct sockaddr *, int, void *);
static int on_welcome(struct fh_peer *, const struct fh_msg *, void *);
static int on_ack(struct fh_peer *, const struct fh_msg *, void *);
static int on_other(struct fh_peer *, const struct fh_msg *, void *);
static void on_lost(struct fh_peer *, const char *, void *);
static void send_batches(struct lg_vm *);
static void on_tick(evutil_socket_t, short, void *);
static void report(void);
static int cmp_double(const void *, const void *);
static void *qmp_thread(void *);

static const struct fh_handler handlers[] = {
	{ FH_MSG_WELCOME, on_welcome },
	{ FH_MSG_ACK, on_ack },
	{ FH_MSG_COMMAND, on_other },
	{ FH_MSG_STATS, on_other },
	{ FH_MSG_ERROR, on_other },
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: freehint-loadgen -n VMS -d DIR [-m RAM_MIB] "
	    "[-r RANGES] [-t SECONDS] [-w CONNECT_TIMEOUT] "
	    "[-R BATCHES_PER_SEC] [-F|-T] [-o FIRST] [-L FILE] [-s SETTLE]\n");
	exit(2);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
listen_at(struct lg_vm *vm, const char *dir, const char *what,
    struct evconnlistener **l)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof sun.sun_path, "%s/vm%d.%s",
	        dir, vm->idx, what) >= sizeof sun.sun_path) {
		log_warnx("%s: socket path too long", dir);
		return -1;
	}
	unlink(sun.sun_path);
	*l = evconnlistener_new_bind(strcmp(what, "qmp") == 0 ? qbase : base,
	    strcmp(what, "qmp") == 0 ? qmp_accept : chan_accept, vm,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 4,
	    (struct sockaddr *)&sun, sizeof sun);
	if (*l == NULL) {
		log_warn("%s", sun.sun_path);
		return -1;
	}
	return 0;
}

static void
qmp_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct lg_vm *vm = arg;

	if (vm->qmp != NULL)
		bufferevent_free(vm->qmp);
	vm->qmp = bufferevent_socket_new(qbase, fd, BEV_OPT_CLOSE_ON_FREE);
	if (vm->qmp == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(vm->qmp, qmp_read, NULL, qmp_event, vm);
	bufferevent_enable(vm->qmp, EV_READ | EV_WRITE);
	evbuffer_add_printf(bufferevent_get_output(vm->qmp),
	    "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, "
	    "\"micro\": 0}, \"package\": \"loadgen\"}, "
	    "\"capabilities\": []}}\r\n");
}

static void
qmp_event(struct bufferevent *bev, short what, void *arg)
{
	struct lg_vm *vm = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(vm->qmp);
		vm->qmp = NULL;
	}
}

static void
qmp_read(struct bufferevent *bev, void *arg)
{
	struct lg_vm *vm = arg;
	char *line;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL,
	            EVBUFFER_EOL_CRLF)) != NULL) {
		qmp_answer(vm, line);
		free(line);
	}
}

/*
 * The answers freehintd needs, as QEMU 7.2 gives them, each with the
 * request's "id" (freehintd matches replies by it).
 */
static void
qmp_answer(struct lg_vm *vm, const char *req)
{
	struct evbuffer *out = bufferevent_get_output(vm->qmp);
	const char *p = strstr(req, "\"id\"");
	char id[40] = "";
	int n = 0;

	if (p != NULL) {
		for (p += 4; *p == ' ' || *p == ':'; p++)
			;
		while (n < 20 && p[n] >= '0' && p[n] <= '9')
			n++;
		snprintf(id, sizeof id, ", \"id\": %.*s", n, p);
	}
	if (strstr(req, "\"human-monitor-command\"") == NULL) {
		/* qmp_capabilities, migrate-set-capabilities;
		 * query-migrate: never migrating. */
		evbuffer_add_printf(out, "{\"return\": {}%s}\r\n", id);
	} else if (strstr(req, "memory-backend\"") != NULL) {
		/* json-c writes "\/machine": match the tail only. */
		evbuffer_add_printf(out,
		    "{\"return\": \"\\\"/objects/mem0\\\"\\r\\n\"%s}\r\n", id);
	} else if (strstr(req, "machine type\"") != NULL) {
		/* Not a PC: no SMRAM to cut out of the map. */
		evbuffer_add_printf(out,
		    "{\"return\": \"\\\"none-machine\\\"\\r\\n\"%s}\r\n", id);
	} else if (strstr(req, "info mtree -f") != NULL) {
		evbuffer_add_printf(out,
		    "{\"return\": \"FlatView #0\\r\\n AS \\\"memory\\\", root: "
		    "system\\r\\n Root memory region: system\\r\\n  "
		    "0000000000000000-%016" PRIx64 " (prio 0, ram): mem0\\r\\n"
		    "\\r\\n\"%s}\r\n",
		    vm->ram_bytes - 1, id);
	} else if (strstr(req, "gpa2hva 0x0\"") != NULL) {
		evbuffer_add_printf(out,
		    "{\"return\": \"Host virtual address for 0x0 (mem0) is "
		    "%p\\r\\n\"%s}\r\n",
		    (void *)vm->ram, id);
	} else {
		evbuffer_add_printf(out,
		    "{\"error\": {\"class\": \"GenericError\", \"desc\": "
		    "\"not served by loadgen\"}%s}\r\n",
		    id);
	}
}

static void
chan_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	Freehint__Hello h = FREEHINT__HELLO__INIT;
	struct lg_vm *vm = arg;
	char name[32];

	if (vm->peer != NULL) {
		close(fd);
		return;
	}
	snprintf(name, sizeof name, "vm%d", vm->idx);
	vm->peer = fh_peer_new(
	    base, fd, name, handlers, FH_ARRAY_SIZE(handlers), on_lost, vm);
	if (vm->peer == NULL)
		fatalx("fh_peer_new");
	h.proto_version = FH_PROTO_VERSION;
	h.agent_version = (char *)"loadgen";
	h.page_size = 4096;
	h.ram_bytes = vm->ram_bytes;
	h.max_pfn = vm->ram_bytes / 4096;
	h.has_capabilities = true;
	h.capabilities = FREEHINT__CAPABILITY__CAP_REPORT;
	h.has_report_order = true;
	h.report_order = LG_ORDER;
	fh_peer_send(vm->peer, FH_MSG_HELLO, &h.base);
}

static int
on_welcome(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	struct lg_vm *vm = arg;
	const Freehint__Welcome *w = m->u.welcome;

	if (vm->welcomed)
		return FREEHINT__REJECT_REASON__NOT_ALLOWED;
	if (w->mode != FREEHINT__MODE__DISCARD)
		log_warnx("vm%d: mode %d, not DISCARD: %s", vm->idx, w->mode,
		    w->reason ? w->reason : "");
	vm->welcomed = true;
	/* As the agent does: receipt is after sending, so never late. */
	vm->clock_off_ms = w->has_host_clock_ms
	    ? (int64_t)w->host_clock_ms - (int64_t)(now() * 1000)
	    : 0;
	vm->max_inflight = w->has_max_inflight ? w->max_inflight : 1;
	if (vm->max_inflight == 0 || vm->max_inflight > LG_INFLIGHT_MAX)
		vm->max_inflight = LG_INFLIGHT_MAX;
	nwelcomed++;
	if (sending)
		send_batches(vm);
	return 0;
}

static void
send_batches(struct lg_vm *vm)
{
	Freehint__RangeBatch b = FREEHINT__RANGE_BATCH__INIT;
	uint64_t blocks = vm->ram_bytes >> (12 + LG_ORDER);
	uint64_t scratch[2 * 1024];
	struct fh_rangeset rs;
	int i;

	fh_rs_init(&rs);
	while (sending && vm->welcomed && vm->inflight < vm->max_inflight &&
	    (rate == 0 || vm->credit >= 1)) {
		if (rate != 0)
			vm->credit -= 1;
		/* Every other block: ranges never adjacent, always sorted. */
		fh_rs_clear(&rs);
		for (i = 0; i < nranges; i++) {
			uint64_t blk =
			    (vm->next_block + 2 * (uint64_t)i) % blocks;

			if (fh_rs_add(&rs, blk << LG_ORDER, 1ULL << LG_ORDER))
				fatalx("fh_rs_add");
			/* Pages for the punch to free, as a guest's would. */
			if (touch == TOUCH_ALL)
				memset(vm->ram + (blk << (12 + LG_ORDER)), 1,
				    4096ULL << LG_ORDER);
			else if (touch == TOUCH_FIRST)
				vm->ram[(blk << (12 + LG_ORDER))] = 1;
		}
		vm->next_block =
		    (vm->next_block + 2 * (uint64_t)nranges) % blocks;
		fh_rs_normalize(&rs);
		if (fh_batch_pack(&b, &rs, scratch) != FH_OK)
			fatalx("fh_batch_pack");
		b.batch_id = ++vm->next_id;
		b.kind = FREEHINT__RANGE_KIND__REPORTED;
		b.has_deadline_ms = true;
		b.deadline_ms = (uint64_t)((int64_t)(now() * 1000) +
		    vm->clock_off_ms + LG_LEASE_MS);
		vm->fly[vm->inflight].id = b.batch_id;
		vm->fly[vm->inflight].sent = now();
		vm->inflight++;
		fh_peer_send(vm->peer, FH_MSG_RANGES, &b.base);
	}
	fh_rs_free(&rs);
}

static int
on_ack(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	const Freehint__Ack *a = m->u.ack;
	struct lg_vm *vm = arg;
	double lat;
	uint32_t i;

	for (i = 0; i < vm->inflight; i++)
		if (vm->fly[i].id == a->batch_id)
			break;
	if (i == vm->inflight)
		return FREEHINT__REJECT_REASON__DUPLICATE_ID;
	lat = now() - vm->fly[i].sent;
	vm->fly[i] = vm->fly[--vm->inflight];
	if (a->status != FREEHINT__ACK_STATUS__APPLIED) {
		vm->rejected++;
		free(reject_last);
		reject_last = xstrdup(a->detail ? a->detail : "(no detail)");
		send_batches(vm);
		return 0;
	}
	vm->acked++;
	vm->ranges += a->ranges_applied;
	if (!draining) {
		if (vm->nlat == vm->caplat) {
			vm->caplat = vm->caplat ? 2 * vm->caplat : 1024;
			vm->lat =
			    xreallocarray(vm->lat, vm->caplat, sizeof *vm->lat);
		}
		vm->lat[vm->nlat++] = lat;
		vm->lat_sum += lat;
		if (lat > vm->lat_max)
			vm->lat_max = lat;
	}
	send_batches(vm);
	return 0;
}

static int
on_other(struct fh_peer *p, const struct fh_msg *m, void *arg)
{
	return 0;
}

static void
on_lost(struct fh_peer *p, const char *why, void *arg)
{
	struct lg_vm *vm = arg;

	log_warnx("vm%d: channel lost: %s", vm->idx, why);
	if (vm->welcomed)
		nwelcomed--;
	vm->welcomed = false;
	vm->inflight = 0;
	fh_peer_free(vm->peer);
	vm->peer = NULL;
}

/* 100 ms: start when all are welcomed, stop after the run, drain. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	static double t_boot, t_tick, t_all;
	double t = now();
	int i, busy = 0;

	if (t_boot == 0)
		t_boot = t;
	if (!sending && !draining) {
		if (nwelcomed < nvms && t - t_boot < connect_timeout)
			return;
		/* freehintd reads each VM's map again after its Hello: let
		 * that end before the load starts (-s). */
		if (t_all == 0)
			t_all = t;
		if (t - t_all < settle)
			return;
		printf("connected %d\n", nwelcomed);
		printf("connect_seconds %.2f\n", t_all - t_boot);
		fflush(stdout);
		if (nwelcomed == 0) {
			event_base_loopbreak(base);
			return;
		}
		sending = true;
		t_start = t_tick = t;
		for (i = 0; i < nvms; i++) {
			/* Spread paced VMs over the period. */
			vms[i].credit = (double)i / nvms;
			send_batches(&vms[i]);
		}
		return;
	}
	if (sending && rate != 0) {
		/* By the clock, so that a late tick does not lower the load. */
		for (i = 0; i < nvms; i++) {
			vms[i].credit += rate * (t - t_tick);
			if (vms[i].credit > LG_INFLIGHT_MAX)
				vms[i].credit = LG_INFLIGHT_MAX;
			send_batches(&vms[i]);
		}
	}
	t_tick = t;
	if (sending && t - t_start >= seconds) {
		sending = false;
		draining = true;
		t_stop = t;
	}
	if (draining) {
		for (i = 0; i < nvms; i++)
			busy += vms[i].welcomed && vms[i].inflight > 0;
		if (busy == 0 || t - t_stop > 5)
			event_base_loopbreak(base);
	}
}

static void *
qmp_thread(void *arg)
{
	event_base_loop(qbase, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(void)
{
	uint64_t acked = 0, rejected = 0, ranges = 0;
	double dur = t_stop - t_start, worst_mean = 0, worst_max = 0;
	double *all, p50 = 0, p99 = 0;
	struct rusage ru;
	size_t nall = 0, k;
	int i, worst = -1;

	for (i = 0; i < nvms; i++)
		nall += vms[i].nlat;
	all = xcalloc(nall ? nall : 1, sizeof *all);
	for (i = 0, k = 0; i < nvms; i++) {
		struct lg_vm *vm = &vms[i];

		acked += vm->acked;
		rejected += vm->rejected;
		ranges += vm->ranges;
		memcpy(all + k, vm->lat, vm->nlat * sizeof *all);
		k += vm->nlat;
		if (vm->nlat > 0 &&
		    vm->lat_sum / (double)vm->nlat > worst_mean) {
			worst_mean = vm->lat_sum / (double)vm->nlat;
			worst = i;
		}
		if (vm->lat_max > worst_max)
			worst_max = vm->lat_max;
	}
	if (nall > 0) {
		qsort(all, nall, sizeof *all, cmp_double);
		p50 = all[nall / 2];
		p99 = all[(size_t)floor(0.99 * (double)(nall - 1))];
	}
	printf("vms %d\n", nvms);
	printf("seconds %.2f\n", dur);
	printf("batches_acked %" PRIu64 "\n", acked);
	printf("batches_rejected %" PRIu64 "\n", rejected);
	printf("ranges_applied %" PRIu64 "\n", ranges);
	printf("ranges_per_sec %.0f\n", dur > 0 ? (double)ranges / dur : 0);
	printf("batches_per_sec %.0f\n", dur > 0 ? (double)acked / dur : 0);
	printf("latency_p50_ms %.3f\n", 1e3 * p50);
	printf("latency_p99_ms %.3f\n", 1e3 * p99);
	printf("slowest_vm %d\n", worst >= 0 ? vms[worst].idx : -1);
	printf("slowest_vm_mean_ms %.3f\n", 1e3 * worst_mean);
	printf("latency_max_ms %.3f\n", 1e3 * worst_max);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("loadgen_cpu %.2f\n",
		    (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		        (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) /
		            1e6);
	if (reject_last != NULL)
		printf("last_reject %s\n", reject_last);
	if (lat_file != NULL) {
		FILE *f = fopen(lat_file, "w");

		if (f == NULL)
			fatal("%s", lat_file);
		for (k = 0; k < nall; k++)
			fprintf(f, "%.3f\n", 1e3 * all[k]);
		if (fclose(f) != 0)
			fatal("%s", lat_file);
	}
	free(all);
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	struct event *tick;
	pthread_t qt;
	struct timeval tv = { 0, 100000 };
	char path[4096];
	uint64_t v;
	FILE *conf;
	int ch, i, first = 0;

	log_init("freehint-loadgen", 1, 0);
	/* A daemon that goes away must not kill the generator. */
	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "FL:R:Td:m:n:o:r:s:t:w:")) != -1) {
		switch (ch) {
		case 'F':
			touch = TOUCH_FIRST;
			break;
		case 'L':
			lat_file = optarg;
			break;
		case 'o':
			if (fh_parse_u64(optarg, 0, 1000000, &v) != 0)
				usage();
			first = (int)v;
			break;
		case 'T':
			touch = TOUCH_NONE;
			break;
		case 'R':
			rate = strtod(optarg, NULL);
			if (!(rate >= 0 && rate <= 1e6))
				usage();
			break;
		case 'd':
			dir = optarg;
			break;
		case 'm':
			if (fh_parse_u64(optarg, 4, 1 << 20, &ram_mib) != 0)
				usage();
			break;
		case 'n':
			if (fh_parse_u64(optarg, 1, 100000, &v) != 0)
				usage();
			nvms = (int)v;
			break;
		case 'r':
			if (fh_parse_u64(optarg, 1, 1024, &v) != 0)
				usage();
			nranges = (int)v;
			break;
		case 't':
			if (fh_parse_u64(optarg, 1, 3600, &v) != 0)
				usage();
			seconds = (int)v;
			break;
		case 's':
			if (fh_parse_u64(optarg, 0, 3600, &v) != 0)
				usage();
			settle = (int)v;
			break;
		case 'w':
			if (fh_parse_u64(optarg, 1, 3600, &v) != 0)
				usage();
			connect_timeout = (int)v;
			break;
		default:
			usage();
		}
	}
	if (dir == NULL || nvms == 0)
		usage();
	/* Ranges are every other 2 MiB block: they must fit the RAM. */
	if ((uint64_t)nranges * 4 > ram_mib)
		fatalx("%d ranges need at least %d MiB of RAM per VM", nranges,
		    nranges * 4);
	if ((base = event_base_new()) == NULL ||
	    (qbase = event_base_new()) == NULL)
		fatalx("event_base_new");
	if (first == 0)
		snprintf(path, sizeof path, "%s/freehintd.conf", dir);
	else
		snprintf(path, sizeof path, "%s/freehintd.%d.conf", dir, first);
	if ((conf = fopen(path, "w")) == NULL)
		fatal("%s", path);
	vms = xcalloc((size_t)nvms, sizeof *vms);
	for (i = 0; i < nvms; i++) {
		struct lg_vm *vm = &vms[i];
		int memfd;

		vm->idx = first + i;
		vm->ram_bytes = ram_mib << 20;
		/* The name QEMU gives its backend: freehintd sees a memfd.
		 * One per VM, as each is a file of its own behind QEMU. */
		memfd = memfd_create("memory-backend-memfd", MFD_CLOEXEC);
		if (memfd == -1 || ftruncate(memfd, (off_t)vm->ram_bytes) != 0)
			fatal("memfd");
		vm->ram = mmap(NULL, vm->ram_bytes, PROT_READ | PROT_WRITE,
		    MAP_SHARED, memfd, 0);
		if (vm->ram == MAP_FAILED)
			fatal("mmap");
		close(memfd);
		if (listen_at(vm, dir, "qmp", &vm->qmp_l) != 0 ||
		    listen_at(vm, dir, "chan", &vm->chan_l) != 0)
			exit(1);
		fprintf(conf,
		    "vm name=vm%d,qmp=%s/vm%d.qmp,channel=%s/vm%d.chan\n",
		    vm->idx, dir, vm->idx, dir, vm->idx);
	}
	if (fclose(conf) != 0)
		fatal("%s", path);
	if ((errno = pthread_create(&qt, NULL, qmp_thread, NULL)) != 0)
		fatal("pthread_create");
	tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(tick, &tv);
	printf("loadgen: listening\n");
	fflush(stdout);
	event_base_dispatch(base);
	report();
	return 0;
}
