/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's counters in Prometheus' text exposition format (0.0.4),
 * served with libevent's evhttp at GET /metrics (--metrics-listen) and
 * handed to freehintctl metrics through the control socket.
 *
 * A scraper is a peer like any other: each connection has a timeout, at
 * most METRICS_MAX_CONNS exist at once (the listener pauses beyond), a
 * request is small and only GET, and the answer is bounded.
 */
#include <sys/socket.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "freehintd.h"

#define METRICS_MAX_CONNS   16
#define METRICS_TIMEOUT_S   5
#define METRICS_HEADERS_MAX 8192
/* What a connection may have read and not yet parsed. */
#define METRICS_READ_MAX (2 * METRICS_HEADERS_MAX)
/* The answer stops listing VMs beyond this; it says so in a comment. */
#define METRICS_BYTES_MAX (16u << 20)

static const char *const kind_names[VM_NKINDS] = { "other", "hint", "reported",
	"held" };
/* The results a batch can have: applied, or why it was refused. */
#define RESULT_MAX FREEHINT__REJECT_REASON__DUPLICATE_ID

static struct evhttp *metrics_http;
static struct evconnlistener *metrics_listener;
/* The connections evhttp serves; each bufferevent holds a reference of
 * ours until evhttp has let go of it (its callbacks are gone). */
static struct bufferevent *metrics_bevs[METRICS_MAX_CONNS];
static unsigned metrics_nconns;
static struct event *metrics_sweep_ev;
static struct log_rl metrics_rl;

static void label(struct evbuffer *, const char *);
static void family(
    struct evbuffer *, const char *name, const char *type, const char *help);
static void vm_sample(struct evbuffer *, const char *name, const struct vm *,
    const char *extra, uint64_t);
static const char *result_name(int, char *, size_t);
static uint64_t v_reclaimed(const struct vm *);
static uint64_t v_ram(const struct vm *);
static uint64_t v_held(const struct vm *);
static uint64_t v_free(const struct vm *);
static uint64_t v_connected(const struct vm *);
static uint64_t v_passes(const struct vm *);
static uint64_t v_pass_bytes(const struct vm *);
struct family;
static void r_returned(
    struct evbuffer *, const struct family *, const struct vm *);
static void r_mode(struct evbuffer *, const struct family *, const struct vm *);
static void r_judged(
    struct evbuffer *, const struct family *, const struct vm *);
static void r_latency(
    struct evbuffer *, const struct family *, const struct vm *);
static struct bufferevent *metrics_bev(struct event_base *, void *);
static void metrics_sweep(evutil_socket_t, short, void *);
static void metrics_request(struct evhttp_request *, void *);

/* A label value: \ " and newline escaped, bytes outside printable
 * ASCII as \xHH (names come from users and from guests). */
static void
label(struct evbuffer *b, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			evbuffer_add_printf(b, "\\%c", *p);
		else if (*p == '\n')
			evbuffer_add(b, "\\n", 2);
		else if (*p < 0x20 || *p >= 0x7f)
			evbuffer_add_printf(b, "\\\\x%02x", *p);
		else
			evbuffer_add(b, p, 1);
	}
}

static void
family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(
	    b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{vm="...",extra} value; extra is already escaped, or NULL. */
static void
vm_sample(struct evbuffer *b, const char *name, const struct vm *vm,
    const char *extra, uint64_t v)
{
	evbuffer_add_printf(b, "%s{vm=\"", name);
	label(b, vm->name);
	evbuffer_add_printf(b, "\"%s%s} %" PRIu64 "\n", extra ? "," : "",
	    extra ? extra : "", v);
}

static const char *
result_name(int r, char *buf, size_t len)
{
	size_t i;

	if (r == 0)
		return "applied";
	snprintf(buf, len, "%s", validate_reason_name(r));
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] >= 'A' && buf[i] <= 'Z')
			buf[i] = (char)(buf[i] - 'A' + 'a');
	return buf;
}

/*
 * A family of metrics: its samples for one VM come from value (one
 * sample) or from render (labelled samples, or none).
 */
struct family {
	const char *name, *type, *help;
	uint64_t (*value)(const struct vm *);
	void (*render)(
	    struct evbuffer *, const struct family *, const struct vm *);
};

static uint64_t
v_reclaimed(const struct vm *vm)
{
	return vm->reclaimed_bytes;
}

static uint64_t
v_ram(const struct vm *vm)
{
	return memmap_ram_bytes(&vm->map);
}

static uint64_t
v_held(const struct vm *vm)
{
	return vm->held_bytes;
}

static uint64_t
v_free(const struct vm *vm)
{
	return vm->guest_free_bytes;
}

static uint64_t
v_connected(const struct vm *vm)
{
	return vm->guest != NULL;
}

static uint64_t
v_passes(const struct vm *vm)
{
	return vm->counters.passes;
}

static uint64_t
v_pass_bytes(const struct vm *vm)
{
	return vm->counters.pass_bytes;
}

/* Only where the backing has a file to ask. */
static void
r_returned(struct evbuffer *b, const struct family *f, const struct vm *vm)
{
	int64_t ret;

	if ((ret = vm_returned_bytes(vm)) >= 0)
		vm_sample(b, f->name, vm, NULL, (uint64_t)ret);
}

static void
r_mode(struct evbuffer *b, const struct family *f, const struct vm *vm)
{
	static const Freehint__Mode modes[] = { FREEHINT__MODE__DISCARD,
		FREEHINT__MODE__ZERO_IN_GUEST, FREEHINT__MODE__RECORD_ONLY };
	char extra[64];
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(modes); i++) {
		snprintf(
		    extra, sizeof extra, "mode=\"%s\"", vm_mode_name(modes[i]));
		vm_sample(b, f->name, vm, extra, vm->mode == modes[i]);
	}
}

/* Batches or ranges (by the family's name) by kind and result. */
static void
r_judged(struct evbuffer *b, const struct family *f, const struct vm *vm)
{
	const struct vm_counters *c = &vm->counters;
	bool batches = strcmp(f->name, "freehint_batches_total") == 0;
	char extra[96], rb[32];
	int k, r;

	for (k = 0; k < VM_NKINDS; k++)
		for (r = 0; r <= RESULT_MAX; r++) {
			/* Kind "other" only once a guest sent one. */
			if (k == 0 && c->batches[k][r] == 0)
				continue;
			snprintf(extra, sizeof extra,
			    "kind=\"%s\",result=\"%s\"", kind_names[k],
			    result_name(r, rb, sizeof rb));
			vm_sample(b, f->name, vm, extra,
			    batches ? c->batches[k][r] : c->ranges[k][r]);
		}
}

static void
r_latency(struct evbuffer *b, const struct family *f, const struct vm *vm)
{
	const struct vm_counters *c = &vm->counters;
	char name[96], extra[32];
	uint64_t n = 0;
	size_t i;

	snprintf(name, sizeof name, "%s_bucket", f->name);
	for (i = 0; i <= VM_LAT_BUCKETS; i++) {
		n += c->lat_count[i];
		if (i < VM_LAT_BUCKETS)
			snprintf(
			    extra, sizeof extra, "le=\"%g\"", vm_lat_bounds[i]);
		else
			snprintf(extra, sizeof extra, "le=\"+Inf\"");
		vm_sample(b, name, vm, extra, n);
	}
	evbuffer_add_printf(b, "%s_sum{vm=\"", f->name);
	label(b, vm->name);
	evbuffer_add_printf(b, "\"} %.9f\n", c->lat_sum);
	snprintf(name, sizeof name, "%s_count", f->name);
	vm_sample(b, name, vm, NULL, n);
}

static const struct family families[] = {
	{ "freehint_reclaimed_bytes_total", "counter",
	    "Bytes of guest RAM discarded so far, counted at every discard "
	    "(a page may be counted again after the guest used it).",
	    v_reclaimed, NULL },
	{ "freehint_returned_bytes", "gauge",
	    "Bytes of guest RAM the host holds no memory for now: the RAM "
	    "less what its backing file has allocated.",
	    NULL, r_returned },
	{ "freehint_ram_bytes", "gauge",
	    "Bytes of guest RAM in the memory map.", v_ram, NULL },
	{ "freehint_held_bytes", "gauge",
	    "Bytes the guest holds for the current hint pass.", v_held, NULL },
	{ "freehint_guest_free_bytes", "gauge",
	    "Free bytes the guest last reported.", v_free, NULL },
	{ "freehint_agent_connected", "gauge",
	    "1 while the guest agent is connected.", v_connected, NULL },
	{ "freehint_vm_mode", "gauge", "1 for the mode the VM is served in.",
	    NULL, r_mode },
	{ "freehint_batches_total", "counter",
	    "Range batches judged, by kind and result.", NULL, r_judged },
	{ "freehint_ranges_total", "counter",
	    "Ranges in judged batches, by kind and result.", NULL, r_judged },
	{ "freehint_discard_duration_seconds", "histogram",
	    "Time one batch's discard took.", NULL, r_latency },
	{ "freehint_hint_passes_total", "counter", "Hint passes started.",
	    v_passes, NULL },
	{ "freehint_hint_pass_held_bytes_total", "counter",
	    "Bytes accepted as held in hint passes.", v_pass_bytes, NULL },
};

/* Every metric, appended to b; a family's samples together. */
void
metrics_render(struct evbuffer *b)
{
	const struct family *f;
	const struct vm *vm;
	unsigned nvms = 0, nguests = 0;

	family(b, "freehint_build_info", "gauge",
	    "Always 1; the version of freehintd in a label.");
	evbuffer_add_printf(
	    b, "freehint_build_info{version=\"%s\"} 1\n", FREEHINT_VERSION);
	TAILQ_FOREACH(vm, &vms, entry) {
		nvms++;
		nguests += vm->guest != NULL;
	}
	family(b, "freehint_vms", "gauge", "VMs the daemon knows of.");
	evbuffer_add_printf(b, "freehint_vms %u\n", nvms);
	family(b, "freehint_guests_connected", "gauge",
	    "Guest agents connected now.");
	evbuffer_add_printf(b, "freehint_guests_connected %u\n", nguests);
	for (f = families; f < families + FH_ARRAY_SIZE(families); f++) {
		family(b, f->name, f->type, f->help);
		TAILQ_FOREACH(vm, &vms, entry) {
			if (evbuffer_get_length(b) > METRICS_BYTES_MAX) {
				evbuffer_add_printf(
				    b, "# truncated: too many VMs\n");
				return;
			}
			if (f->value != NULL)
				vm_sample(b, f->name, vm, NULL, f->value(vm));
			else
				f->render(b, f, vm);
		}
	}
}

/* Each connection evhttp accepts gets its bufferevent from here. */
static struct bufferevent *
metrics_bev(struct event_base *base, void *arg)
{
	struct bufferevent *bev;
	struct timeval tv = { 1, 0 };
	size_t i;

	/* Closed on free, so that its fd is not reused while we hold it. */
	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL)
		return NULL;
	bufferevent_setwatermark(bev, EV_READ, 0, METRICS_READ_MAX);
	for (i = 0; i < METRICS_MAX_CONNS; i++)
		if (metrics_bevs[i] == NULL)
			break;
	/* The listener pauses at the cap: a slot is always free here. */
	if (i == METRICS_MAX_CONNS)
		return bev;
	bufferevent_incref(bev);
	metrics_bevs[i] = bev;
	if (++metrics_nconns >= METRICS_MAX_CONNS) {
		log_warnx_rl(&metrics_rl,
		    "metrics: %u connections, not accepting more for now",
		    metrics_nconns);
		evconnlistener_disable(metrics_listener);
	}
	if (!evtimer_pending(metrics_sweep_ev, NULL))
		evtimer_add(metrics_sweep_ev, &tv);
	return bev;
}

/*
 * evhttp frees a connection's bufferevent by clearing its callbacks and
 * dropping its reference: ours is then the last, and the slot is free.
 * Dropping ours never frees one evhttp still holds.
 */
static void
metrics_sweep(evutil_socket_t fd, short what, void *arg)
{
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;
	struct timeval tv = { 1, 0 };
	void *cbarg;
	size_t i;

	for (i = 0; i < METRICS_MAX_CONNS; i++) {
		if (metrics_bevs[i] == NULL)
			continue;
		bufferevent_getcb(metrics_bevs[i], &rcb, &wcb, &ecb, &cbarg);
		if (rcb != NULL || wcb != NULL || ecb != NULL)
			continue;
		bufferevent_decref(metrics_bevs[i]);
		metrics_bevs[i] = NULL;
		metrics_nconns--;
	}
	if (metrics_listener != NULL && metrics_nconns < METRICS_MAX_CONNS)
		evconnlistener_enable(metrics_listener);
	if (metrics_nconns > 0)
		evtimer_add(metrics_sweep_ev, &tv);
}

static void
metrics_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b;
	const char *uri = evhttp_request_get_uri(req);

	if (strcmp(uri, "/metrics") != 0 && strncmp(uri, "/metrics?", 9) != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics here");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	metrics_render(b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

/* Listen on ADDR:PORT ([::1]:9848, 127.0.0.1:9848, 0.0.0.0:9848). */
int
metrics_open(const char *addrport)
{
	int fd;

	if ((fd = metrics_bind(addrport)) == -1)
		return -1;
	return metrics_serve(fd, addrport);
}

/* The listening socket alone (the privileged parent binds it). */
int
metrics_bind(const char *addrport)
{
	struct sockaddr_storage ss;
	int len = sizeof ss, fd;

	if (evutil_parse_sockaddr_port(
	        addrport, (struct sockaddr *)&ss, &len) != 0) {
		log_warnx("metrics-listen %s: not ADDR:PORT", addrport);
		return -1;
	}
	if ((fd = fh_listen_addr((struct sockaddr *)&ss, (socklen_t)len, 16)) ==
	    -1) {
		log_warn("metrics-listen %s", addrport);
		return -1;
	}
	return fd;
}

/* Serve GET /metrics on a listening socket, which is ours from now. */
int
metrics_serve(int fd, const char *addrport)
{
	evutil_make_socket_nonblocking(fd);
	metrics_listener = evconnlistener_new(ev_base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (metrics_listener == NULL) {
		log_warn("metrics-listen %s", addrport);
		close(fd);
		return -1;
	}
	metrics_http = evhttp_new(ev_base);
	metrics_sweep_ev = evtimer_new(ev_base, metrics_sweep, NULL);
	if (metrics_http == NULL || metrics_sweep_ev == NULL ||
	    evhttp_bind_listener(metrics_http, metrics_listener) == NULL) {
		log_warnx("metrics-listen %s: cannot serve", addrport);
		if (metrics_http == NULL)
			evconnlistener_free(metrics_listener);
		metrics_listener = NULL;
		metrics_close();
		return -1;
	}
	evhttp_set_timeout(metrics_http, METRICS_TIMEOUT_S);
	evhttp_set_max_headers_size(metrics_http, METRICS_HEADERS_MAX);
	evhttp_set_max_body_size(metrics_http, 1024);
	evhttp_set_allowed_methods(metrics_http, EVHTTP_REQ_GET);
	evhttp_set_bevcb(metrics_http, metrics_bev, NULL);
	evhttp_set_gencb(metrics_http, metrics_request, NULL);
	log_info("metrics at http://%s/metrics", addrport);
	return 0;
}

void
metrics_close(void)
{
	size_t i;

	/* evhttp_free frees the listener and every connection. */
	if (metrics_http != NULL)
		evhttp_free(metrics_http);
	metrics_http = NULL;
	metrics_listener = NULL;
	for (i = 0; i < METRICS_MAX_CONNS; i++)
		if (metrics_bevs[i] != NULL) {
			bufferevent_decref(metrics_bevs[i]);
			metrics_bevs[i] = NULL;
		}
	metrics_nconns = 0;
	if (metrics_sweep_ev != NULL)
		event_free(metrics_sweep_ev);
	metrics_sweep_ev = NULL;
}
