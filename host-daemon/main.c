/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehintd: receives what guest agents offer, validates it and drops the
 * guest memory that is safe to drop. Options, configuration, signals and
 * the systemd protocol; everything else lives in the other files.
 */
#include <sys/socket.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "freehintd.h"
#ifdef HAVE_LIBVIRT
#include "libvirt.h"
#endif

#define LIBVIRTD_SOCK "/run/libvirt/libvirt-sock"

enum {
	OPT_VM = 256,
	OPT_CONTROL,
	OPT_CONTROL_GROUP,
	OPT_ADMIN_GROUP,
	OPT_VSOCK_PORT,
	OPT_LIBVIRT_URI,
	OPT_DUMP,
	OPT_MIN_ORDER,
	OPT_MAX_RANGES,
	OPT_MAX_BYTES,
	OPT_BATCHES_SEC,
	OPT_BYTES_SEC,
	OPT_MAX_FAULTS,
	OPT_HINT_ORDER,
	OPT_STATS_MS,
	OPT_HOLD_MS,
	OPT_LINK_SPEED,
	OPT_PASS_SPEED,
	OPT_PUNCH_WORKERS,
	OPT_METRICS_LISTEN,
};

static const struct option longopts[] = { { "debug", no_argument, NULL, 'd' },
	{ "config", required_argument, NULL, 'f' },
	{ "check", no_argument, NULL, 'n' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "dump-config", no_argument, NULL, OPT_DUMP },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "vm", required_argument, NULL, OPT_VM },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "control-group", required_argument, NULL, OPT_CONTROL_GROUP },
	{ "admin-group", required_argument, NULL, OPT_ADMIN_GROUP },
	{ "vsock-port", required_argument, NULL, OPT_VSOCK_PORT },
	{ "libvirt-uri", required_argument, NULL, OPT_LIBVIRT_URI },
	{ "min-order", required_argument, NULL, OPT_MIN_ORDER },
	{ "max-batch-ranges", required_argument, NULL, OPT_MAX_RANGES },
	{ "max-batch-bytes", required_argument, NULL, OPT_MAX_BYTES },
	{ "max-batches-per-sec", required_argument, NULL, OPT_BATCHES_SEC },
	{ "max-bytes-per-sec", required_argument, NULL, OPT_BYTES_SEC },
	{ "max-faults", required_argument, NULL, OPT_MAX_FAULTS },
	{ "hint-min-order", required_argument, NULL, OPT_HINT_ORDER },
	{ "stats-interval-ms", required_argument, NULL, OPT_STATS_MS },
	{ "migration-hold-ms", required_argument, NULL, OPT_HOLD_MS },
	{ "migration-link-speed", required_argument, NULL, OPT_LINK_SPEED },
	{ "hint-pass-speed", required_argument, NULL, OPT_PASS_SPEED },
	{ "punch-workers", required_argument, NULL, OPT_PUNCH_WORKERS },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ NULL, 0, NULL, 0 } };

struct config *conf;
struct event_base *ev_base;

static int foreground, check_only, verbose, dump;
/* Command-line settings, applied over the file again at every SIGHUP. */
static struct fh_cmdline cmdline;
static const char *conf_path;
static struct event *ev_sigterm, *ev_sigint, *ev_sighup, *ev_watchdog;

static void usage(int) __attribute__((noreturn));
static struct config *config_new(void);
static void config_free(struct config *);
static int config_opt(int, const char *, const char *, void *, char *, size_t);
static void cmdline_check(void);
static struct config *config_load(char *, size_t);
static void config_dump(const struct config *);
static void start_vms(void);
static void on_signal(evutil_socket_t, short, void *);
static void on_watchdog(evutil_socket_t, short, void *);
static void notify_status(unsigned, unsigned);
static int worker_main(struct privsep_conf *, int);

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: freehintd [-dhnvV] [-f file] [--dump-config] "
	    "[--vm name=NAME,qmp=PATH[,channel=PATH][,cid=N]]...\n"
	    "                 [--control path] [--control-group group] "
	    "[--admin-group group]\n"
	    "                 [--vsock-port port] [--libvirt-uri uri]\n"
	    "                 [--min-order N] [--hint-min-order N] "
	    "[--max-batch-ranges N] [--max-batch-bytes SIZE]\n"
	    "                 [--max-batches-per-sec N] "
	    "[--max-bytes-per-sec SIZE] [--max-faults N]\n"
	    "                 [--stats-interval-ms MS] "
	    "[--migration-hold-ms MS] [--punch-workers N]\n"
	    "                 [--migration-link-speed SIZE] "
	    "[--hint-pass-speed SIZE]\n"
	    "                 [--metrics-listen ADDR:PORT]\n"
	    "  -d, --debug        log to stderr, not syslog\n"
	    "  -f, --config FILE  read FILE, not %s\n"
	    "  -n, --check        check the configuration and exit\n"
	    "  -v, --verbose      log debug messages too\n"
	    "  -h, --help         print this and exit\n"
	    "  -V, --version      print the version and exit\n",
	    FREEHINTD_CONF);
	exit(status);
}

static struct config *
config_new(void)
{
	struct config *c;

	c = xcalloc(1, sizeof *c);
	c->control = xstrdup(FREEHINTD_CONTROL);
	c->vsock_port = FREEHINTD_VSOCK_PORT;
	c->punch_workers = FREEHINTD_PUNCH_WORKERS;
	TAILQ_INIT(&c->vms);
	policy_defaults(&c->policy);
	return c;
}

static void
config_free(struct config *c)
{
	struct vm_conf *vc;

	if (c == NULL)
		return;
	while ((vc = TAILQ_FIRST(&c->vms)) != NULL) {
		TAILQ_REMOVE(&c->vms, vc, entry);
		free(vc->name);
		free(vc->qmp);
		free(vc->channel);
		free(vc);
	}
	free(c->control);
	free(c->control_group);
	free(c->admin_group);
	free(c->libvirt_uri);
	free(c->metrics_listen);
	free(c);
}

static int
config_opt(int val, const char *name, const char *arg, void *ctx, char *err,
    size_t errlen)
{
	struct config *c = ctx;
	struct vm_conf vc, *n, *o;
	uint64_t v;

	switch (val) {
	case OPT_VM:
		if (qmp_parse_vm(arg, &vc, err, errlen) != 0)
			return -1;
		TAILQ_FOREACH(o, &c->vms, entry)
			if (strcmp(o->name, vc.name) == 0 ||
			    (vc.cid != 0 && o->cid == vc.cid)) {
				snprintf(err, errlen,
				    "vm %s: name or cid repeated", vc.name);
				free(vc.name);
				free(vc.qmp);
				free(vc.channel);
				return -1;
			}
		n = xmalloc(sizeof *n);
		*n = vc;
		TAILQ_INSERT_TAIL(&c->vms, n, entry);
		return 0;
	case OPT_CONTROL:
		free(c->control);
		c->control = xstrdup(arg);
		return 0;
	case OPT_CONTROL_GROUP:
		free(c->control_group);
		c->control_group = xstrdup(arg);
		return 0;
	case OPT_ADMIN_GROUP:
		free(c->admin_group);
		c->admin_group = xstrdup(arg);
		return 0;
	case OPT_LIBVIRT_URI:
		free(c->libvirt_uri);
		c->libvirt_uri = xstrdup(arg);
		return 0;
	case OPT_METRICS_LISTEN: {
		struct sockaddr_storage ss;
		int sslen = sizeof ss;

		/* Checked here so that -n finds a bad one. */
		if (evutil_parse_sockaddr_port(
		        arg, (struct sockaddr *)&ss, &sslen) != 0)
			break;
		free(c->metrics_listen);
		c->metrics_listen = xstrdup(arg);
		return 0;
	}
	case OPT_VSOCK_PORT:
		if (fh_parse_u64(arg, 0, UINT32_MAX - 1, &v) != 0)
			break;
		c->vsock_port = (uint32_t)v;
		return 0;
	case OPT_HINT_ORDER:
		if (strcmp(arg, "auto") == 0) {
			c->policy.hint_min_order = FREEHINTD_ORDER_AUTO;
			return 0;
		}
		/* FALLTHROUGH */
	case OPT_MIN_ORDER:
		if (fh_parse_u64(arg, 0, 20, &v) != 0)
			break;
		if (val == OPT_MIN_ORDER)
			c->policy.min_order = (uint32_t)v;
		else
			c->policy.hint_min_order = (uint32_t)v;
		return 0;
	case OPT_MAX_RANGES:
		if (fh_parse_u64(arg, 1, FH_BATCH_MAX_RANGES, &v) != 0)
			break;
		c->policy.max_batch_ranges = (uint32_t)v;
		return 0;
	case OPT_MAX_BYTES:
	case OPT_BYTES_SEC:
	case OPT_LINK_SPEED:
	case OPT_PASS_SPEED:
		if (fh_parse_size(arg, &v) != 0 || v == 0)
			break;
		if (val == OPT_MAX_BYTES)
			c->policy.max_batch_bytes = v;
		else if (val == OPT_BYTES_SEC)
			c->policy.max_bytes_sec = v;
		else if (val == OPT_LINK_SPEED)
			c->policy.migration_link_bps = v;
		else
			c->policy.hint_pass_bps = v;
		return 0;
	case OPT_BATCHES_SEC:
	case OPT_MAX_FAULTS:
		if (fh_parse_u64(arg, 1, 1000000, &v) != 0)
			break;
		if (val == OPT_BATCHES_SEC)
			c->policy.max_batches_sec = (uint32_t)v;
		else
			c->policy.max_faults = (uint32_t)v;
		return 0;
	case OPT_STATS_MS:
		if (fh_parse_u64(arg, 0, 3600000, &v) != 0)
			break;
		c->policy.stats_interval_ms = (uint32_t)v;
		return 0;
	case OPT_HOLD_MS:
		if (fh_parse_u64(arg, 0, 600000, &v) != 0)
			break;
		c->policy.migration_hold_ms = (uint32_t)v;
		return 0;
	case OPT_PUNCH_WORKERS:
		if (fh_parse_u64(arg, 1, FREEHINTD_PUNCH_WORKERS_MAX, &v) != 0)
			break;
		c->punch_workers = (unsigned)v;
		return 0;
	default:
		snprintf(err, errlen, "%s: not allowed here", name);
		return -1;
	}
	snprintf(err, errlen, "%s: bad value '%s'", name, arg);
	return -1;
}

/*
 * The command line's values alone, before the file is read: a bad one is
 * a usage error (exit 2), one in the file a configuration error (1).
 */
static void
cmdline_check(void)
{
	struct config *c = config_new();
	char err[512];

	if (fh_cmdline_apply(&cmdline, config_opt, c, err, sizeof err) != 0) {
		fprintf(stderr, "freehintd: %s\n", err);
		config_free(c);
		fh_cmdline_free(&cmdline);
		exit(2);
	}
	config_free(c);
}

/* The file first (if any), then the command line on top of it. */
static struct config *
config_load(char *err, size_t errlen)
{
	struct config *c = config_new();

	if (fh_conf_apply(conf_path ? conf_path : FREEHINTD_CONF,
	        conf_path != NULL, longopts, &cmdline, config_opt, c, err,
	        errlen) != 0) {
		config_free(c);
		return NULL;
	}
	return c;
}

static void
config_dump(const struct config *c)
{
	const struct vm_conf *vc;

	printf("control %s\n", c->control);
	if (c->control_group)
		printf("control-group %s\n", c->control_group);
	if (c->admin_group)
		printf("admin-group %s\n", c->admin_group);
	printf("vsock-port %u\n", c->vsock_port);
	if (c->libvirt_uri)
		printf("libvirt-uri %s\n", c->libvirt_uri);
	if (c->metrics_listen)
		printf("metrics-listen %s\n", c->metrics_listen);
	printf("min-order %u\nmax-batch-ranges %u\nmax-batch-bytes %llu\n"
	       "max-batches-per-sec %u\nmax-bytes-per-sec %llu\n"
	       "max-faults %u\n",
	    c->policy.min_order, c->policy.max_batch_ranges,
	    (unsigned long long)c->policy.max_batch_bytes,
	    c->policy.max_batches_sec,
	    (unsigned long long)c->policy.max_bytes_sec, c->policy.max_faults);
	if (c->policy.hint_min_order == FREEHINTD_ORDER_AUTO)
		printf("hint-min-order auto\n");
	else
		printf("hint-min-order %u\n", c->policy.hint_min_order);
	printf("stats-interval-ms %u\nmigration-hold-ms %u\npunch-workers %u\n",
	    c->policy.stats_interval_ms, c->policy.migration_hold_ms,
	    c->punch_workers);
	printf("migration-link-speed %llu\nhint-pass-speed %llu\n",
	    (unsigned long long)c->policy.migration_link_bps,
	    (unsigned long long)c->policy.hint_pass_bps);
	TAILQ_FOREACH(vc, &c->vms, entry) {
		printf("vm name=%s,qmp=%s", vc->name, vc->qmp);
		if (vc->channel)
			printf(",channel=%s", vc->channel);
		if (vc->cid)
			printf(",cid=%u", vc->cid);
		printf("\n");
	}
}

static void
start_vms(void)
{
	struct vm_conf *vc;

	TAILQ_FOREACH(vc, &conf->vms, entry)
		qmp_static_start(vc);
}

static void
notify_status(unsigned n, unsigned up)
{
	sd_notifyf(0, "STATUS=%u VMs, %u agents connected", n, up);
}

/*
 * The watchdog is fed only while the worker answers: a worker stuck in
 * its loop serves no guest, and systemd restarts both.
 */
static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	unsigned n, up;

	if (!ps_parent_alive(&n, &up)) {
		log_warnx("the worker has not answered since the last "
		          "watchdog tick");
		return;
	}
	sd_notify(0, "WATCHDOG=1");
	notify_status(n, up);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct config *c;
	char err[256];

	if (sig != SIGHUP) {
		log_info("exiting on signal %d", (int)sig);
		sd_notify(0, "STOPPING=1");
		event_base_loopbreak(ev_base);
		return;
	}
	if ((c = config_load(err, sizeof err)) == NULL) {
		log_warnx("reload: %s; keeping the old configuration", err);
		return;
	}
	sd_notify(0, "RELOADING=1");
	log_info("reloading the VM list");
	/* Policy, VMs; sockets and libvirt stay as they were bound. */
	free(c->control);
	c->control = xstrdup(conf->control);
	free(c->metrics_listen);
	c->metrics_listen =
	    conf->metrics_listen != NULL ? xstrdup(conf->metrics_listen) : NULL;
	if (c->libvirt_uri == NULL && conf->libvirt_uri != NULL)
		c->libvirt_uri = xstrdup(conf->libvirt_uri);
	/* The pool was started with the daemon. */
	if (c->punch_workers != conf->punch_workers)
		log_warnx("reload: punch-workers takes effect at the next "
		          "start; %u workers run",
		    conf->punch_workers);
	c->punch_workers = conf->punch_workers;
	qmp_static_reload(&c->vms);
	config_free(conf);
	conf = c;
	ps_parent_policy(&conf->policy);
	sd_notify(0, "READY=1");
}

int
main(int argc, char **argv)
{
	struct privsep_conf pc;
	struct timeval tv;
	uint64_t wd_usec;
	char err[512];
	int ch, rc, psfd;
	pid_t worker;

	while (
	    (ch = getopt_long(argc, argv, "df:hnvV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			foreground = 1;
			break;
		case 'f':
			conf_path = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			verbose++;
			break;
		case OPT_DUMP:
			dump = 1;
			break;
		case 'h':
			usage(0);
		case 'V':
			printf("freehintd %s\n", FREEHINT_VERSION);
			return 0;
		case '?':
			usage(2);
		default:
			fh_cmdline_add(&cmdline, longopts, ch, optarg);
			break;
		}
	}
	if (optind != argc)
		usage(2);
	cmdline_check();
	/* Under systemd the journal reads stderr. */
	log_init("freehintd",
	    foreground || check_only || dump || getenv("JOURNAL_STREAM"),
	    verbose);
	if ((conf = config_load(err, sizeof err)) == NULL) {
		fprintf(stderr, "freehintd: %s\n", err);
		return 1;
	}
	if (dump)
		config_dump(conf);
	if (check_only || dump) {
		if (check_only)
			fprintf(stderr, "freehintd: configuration OK\n");
		config_free(conf);
		fh_cmdline_free(&cmdline);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Bound here, as root; the worker serves them. */
	memset(&pc, 0, sizeof pc);
	pc.user = FREEHINTD_USER;
	pc.root = FREEHINTD_EMPTY;
	pc.metrics_fd = pc.vsock_fd = -1;
	if ((pc.control_fd = control_bind(
	         conf->control, conf->control_group, conf->admin_group)) == -1)
		goto early;
	if (conf->metrics_listen != NULL &&
	    (pc.metrics_fd = metrics_bind(conf->metrics_listen)) == -1)
		goto early;
	/* Where vsock has no transport the daemon still serves channels. */
	if (conf->vsock_port != 0 &&
	    (pc.vsock_fd = vsock_bind(conf->vsock_port)) == -1)
		log_warnx("no vsock listener; virtio-serial channels only");
	if (privsep_prepare(&pc, err, sizeof err) != 0) {
		log_warnx("%s", err);
		goto early;
	}
	if ((worker = privsep_fork(&pc, &psfd)) == 0)
		exit(worker_main(&pc, psfd));
	close(pc.control_fd);
	if (pc.metrics_fd != -1)
		close(pc.metrics_fd);
	if (pc.vsock_fd != -1)
		close(pc.vsock_fd);
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	ev_sigterm = evsignal_new(ev_base, SIGTERM, on_signal, NULL);
	ev_sigint = evsignal_new(ev_base, SIGINT, on_signal, NULL);
	ev_sighup = evsignal_new(ev_base, SIGHUP, on_signal, NULL);
	evsignal_add(ev_sigterm, NULL);
	evsignal_add(ev_sigint, NULL);
	evsignal_add(ev_sighup, NULL);
	ps_parent_start(ev_base, psfd, worker);
#ifdef HAVE_LIBVIRT
	/* With no VM configured, follow the local libvirtd if it runs. */
	if (conf->libvirt_uri == NULL && TAILQ_EMPTY(&conf->vms) &&
	    access(LIBVIRTD_SOCK, F_OK) == 0)
		conf->libvirt_uri = xstrdup(VL_DEFAULT_URI);
	if (conf->libvirt_uri != NULL && vl_init(ev_base, conf->libvirt_uri))
		log_warnx("libvirt %s: not available", conf->libvirt_uri);
#endif
	start_vms();
	sd_notify(0, "READY=1");
	notify_status(0, 0);
	ev_watchdog = event_new(ev_base, -1, EV_PERSIST, on_watchdog, NULL);
	if (sd_watchdog_enabled(0, &wd_usec) > 0) {
		tv.tv_sec = (time_t)(wd_usec / 2 / 1000000);
		tv.tv_usec = (suseconds_t)(wd_usec / 2 % 1000000);
	} else {
		tv.tv_sec = 10;
		tv.tv_usec = 0;
	}
	event_add(ev_watchdog, &tv);
	log_info("started, control socket %s", conf->control);
	event_base_dispatch(ev_base);
	rc = ps_parent_failed ? 1 : 0;
	sd_notify(0, "STOPPING=1");
	/* First: nothing serves it once the worker is gone, and a daemon
	 * started now should find the path free, not refused by us. */
	control_close();
#ifdef HAVE_LIBVIRT
	if (conf->libvirt_uri != NULL)
		vl_shutdown();
#endif
	qmp_static_stop_all();
	/* The worker ends its discards in flight, then exits. */
	ps_parent_stop();
	if (privsep_reap(worker) != 0)
		rc = 1;
	if (ev_watchdog)
		event_free(ev_watchdog);
	event_free(ev_sigterm);
	event_free(ev_sigint);
	event_free(ev_sighup);
	event_base_free(ev_base);
	config_free(conf);
	fh_cmdline_free(&cmdline);
	return rc;
early:
	control_close();
	config_free(conf);
	fh_cmdline_free(&cmdline);
	return 1;
}

/*
 * The worker: agents, freehintctl and metrics on the sockets bound for
 * it, the registry fed by the parent, the punch workers.
 */
static int
worker_main(struct privsep_conf *pc, int psfd)
{
	char err[256];
	int rc = 1;

	/* The parent's to unlink, and not reachable from here anyway. */
	control_disown();
	if (privsep_drop(pc, err, sizeof err) != 0) {
		log_warnx("worker: %s", err);
		return 1;
	}
	/* The parent stops it, by closing the socketpair. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if (punch_init(ev_base, conf->punch_workers) != 0 ||
	    control_serve(pc->control_fd) != 0)
		goto out;
	if (pc->metrics_fd != -1 &&
	    metrics_serve(pc->metrics_fd, conf->metrics_listen) != 0)
		goto out;
	if (pc->vsock_fd != -1)
		listen_vsock_fd(pc->vsock_fd, conf->vsock_port);
	ps_worker_start(ev_base, psfd);
	log_debug("worker: uid %u, serving", (unsigned)getuid());
	event_base_dispatch(ev_base);
	rc = 0;
out:
	control_close();
	vm_remove_all();
	/* After the VMs: their discards in flight end before we exit. */
	punch_shutdown();
	metrics_close();
	listen_vsock_close();
	ps_worker_stop();
	event_base_free(ev_base);
	config_free(conf);
	fh_cmdline_free(&cmdline);
	return rc;
}
