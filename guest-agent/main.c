/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehint-agent's process: its configuration (options, the file, reloads
 * on SIGHUP), signals, and systemd's READY=1 and watchdog around the agent
 * (agent.c).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "agent.h"

enum {
	OPT_DUMP_CONFIG = 256,
	OPT_HELP,
	OPT_VERSION,
	OPT_TRANSPORT,
	OPT_VSOCK_CID,
	OPT_VSOCK_PORT,
	OPT_SERIAL_PATH,
	OPT_UNIX_PATH,
	OPT_PROC_DIR,
	OPT_MAX_INFLIGHT,
	OPT_BATCH_RANGES,
	OPT_STATS_INTERVAL,
	OPT_WAIT_MODULE,
	OPT_BACKOFF_MAX,
	OPT_REPORT_DEFER_RATE,
	OPT_REPORT_HEADROOM,
};

/*
 * The long options, indexed by value - OPT_DUMP_CONFIG. All but the first
 * three may appear in the configuration file (conf_options).
 */
static const struct option long_options[] = {
	{ "dump-config", no_argument, NULL, OPT_DUMP_CONFIG },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "transport", required_argument, NULL, OPT_TRANSPORT },
	{ "vsock-cid", required_argument, NULL, OPT_VSOCK_CID },
	{ "vsock-port", required_argument, NULL, OPT_VSOCK_PORT },
	{ "serial-path", required_argument, NULL, OPT_SERIAL_PATH },
	{ "unix-path", required_argument, NULL, OPT_UNIX_PATH },
	{ "proc-dir", required_argument, NULL, OPT_PROC_DIR },
	{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "batch-ranges", required_argument, NULL, OPT_BATCH_RANGES },
	{ "stats-interval", required_argument, NULL, OPT_STATS_INTERVAL },
	{ "wait-module", no_argument, NULL, OPT_WAIT_MODULE },
	{ "backoff-max", required_argument, NULL, OPT_BACKOFF_MAX },
	{ "report-defer-rate", required_argument, NULL, OPT_REPORT_DEFER_RATE },
	{ "report-headroom", required_argument, NULL, OPT_REPORT_HEADROOM },
	{ NULL, 0, NULL, 0 },
};
static const struct option *const conf_options = long_options + 3;

/* Command-line settings applied over the file, kept for SIGHUP. */
static struct fh_cmdline cmdline;

static __attribute__((noreturn)) void usage(int);
static void conf_defaults(struct agent_conf *);
static void conf_clear(struct agent_conf *);
static int conf_set(int, const char *, const char *, void *, char *, size_t);
static int conf_load(struct agent *, struct agent_conf *, char *, size_t);
static void conf_dump(const struct agent_conf *);
static void agent_reload(struct agent *);
static void signal_cb(int, short, void *);
static void watchdog_cb(int, short, void *);

static __attribute__((noreturn)) void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: freehint-agent [-dhnvV] [-f file] [--dump-config] "
	    "[--transport auto|vsock|virtio-serial|unix]\n"
	    "\t[--vsock-cid N] [--vsock-port N] [--serial-path PATH] "
	    "[--unix-path PATH]\n"
	    "\t[--proc-dir DIR] [--max-inflight N] [--batch-ranges N] "
	    "[--stats-interval SEC]\n"
	    "\t[--wait-module] [--backoff-max MS] [--report-defer-rate "
	    "MIBS]\n"
	    "\t[--report-headroom auto|MIB]\n"
	    "  -h, --help     print this and exit\n"
	    "  -V, --version  print the version and exit\n");
	exit(status);
}

static void
conf_defaults(struct agent_conf *c)
{
	memset(c, 0, sizeof *c);
	c->transport = TRANSPORT_AUTO;
	c->vsock_cid = 2;
	c->vsock_port = 7700;
	c->serial_path = xstrdup("/dev/virtio-ports/org.freehint.agent.0");
	c->proc_dir = xstrdup("/proc/freehint");
	c->max_inflight = 8;
	c->batch_ranges = 1024;
	c->stats_interval = 10;
	c->backoff_max = 30000;
	c->report_headroom = HEADROOM_AUTO;
}

static void
conf_clear(struct agent_conf *c)
{
	free(c->serial_path);
	free(c->unix_path);
	free(c->proc_dir);
	memset(c, 0, sizeof *c);
}

static int
conf_u32(const char *arg, uint64_t min, uint64_t max, uint32_t *out,
    const char *name, char *err, size_t errlen)
{
	uint64_t v;

	if (fh_parse_u64(arg, min, max, &v) != 0) {
		snprintf(err, errlen, "%s: '%s' is not a number in %llu..%llu",
		    name, arg, (unsigned long long)min,
		    (unsigned long long)max);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* One setting, from the file or the command line. */
static int
conf_set(int val, const char *name, const char *arg, void *ctx, char *err,
    size_t errlen)
{
	struct agent_conf *c = ctx;

	switch (val) {
	case OPT_TRANSPORT:
		if (transport_kind_parse(arg, &c->transport) != 0) {
			snprintf(err, errlen,
			    "transport: '%s' is not auto, vsock, "
			    "virtio-serial or unix",
			    arg);
			return -1;
		}
		return 0;
	case OPT_VSOCK_CID:
		return conf_u32(
		    arg, 1, UINT32_MAX - 1, &c->vsock_cid, name, err, errlen);
	case OPT_VSOCK_PORT:
		return conf_u32(
		    arg, 1, UINT32_MAX - 1, &c->vsock_port, name, err, errlen);
	case OPT_SERIAL_PATH:
		free(c->serial_path);
		c->serial_path = xstrdup(arg);
		return 0;
	case OPT_UNIX_PATH:
		free(c->unix_path);
		c->unix_path = xstrdup(arg);
		return 0;
	case OPT_PROC_DIR:
		free(c->proc_dir);
		c->proc_dir = xstrdup(arg);
		return 0;
	case OPT_MAX_INFLIGHT:
		return conf_u32(
		    arg, 1, 1024, &c->max_inflight, name, err, errlen);
	case OPT_BATCH_RANGES:
		return conf_u32(arg, 1, FH_BATCH_MAX_RANGES, &c->batch_ranges,
		    name, err, errlen);
	case OPT_STATS_INTERVAL:
		return conf_u32(
		    arg, 0, 86400, &c->stats_interval, name, err, errlen);
	case OPT_WAIT_MODULE:
		c->wait_module = true;
		return 0;
	case OPT_BACKOFF_MAX:
		return conf_u32(
		    arg, 100, 3600000, &c->backoff_max, name, err, errlen);
	case OPT_REPORT_DEFER_RATE:
		return conf_u32(
		    arg, 0, 1048576, &c->report_defer_rate, name, err, errlen);
	case OPT_REPORT_HEADROOM:
		if (strcmp(arg, "auto") == 0) {
			c->report_headroom = HEADROOM_AUTO;
			return 0;
		}
		if (conf_u32(arg, 0, 1048576, &c->report_headroom, name, err,
		        errlen) != 0) {
			snprintf(err, errlen,
			    "%s: '%s' is not auto or a number in 0..1048576",
			    name, arg);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "%s: unknown option", name);
	return -1;
}

/* Defaults, then the file, then the command line. */
static int
conf_load(struct agent *a, struct agent_conf *c, char *err, size_t errlen)
{
	conf_defaults(c);
	if (fh_conf_apply(a->conf_file, a->conf_explicit, conf_options,
	        &cmdline, conf_set, c, err, errlen) != 0) {
		conf_clear(c);
		return -1;
	}
	if (c->transport == TRANSPORT_UNIX && c->unix_path == NULL) {
		snprintf(err, errlen, "transport unix needs unix-path");
		conf_clear(c);
		return -1;
	}
	return 0;
}

static void
conf_dump(const struct agent_conf *c)
{
	printf("transport %s\n", transport_kind_name(c->transport));
	printf("vsock-cid %u\n", c->vsock_cid);
	printf("vsock-port %u\n", c->vsock_port);
	printf("serial-path %s\n", c->serial_path);
	if (c->unix_path != NULL)
		printf("unix-path %s\n", c->unix_path);
	else
		printf("# unix-path (none)\n");
	printf("proc-dir %s\n", c->proc_dir);
	printf("max-inflight %u\n", c->max_inflight);
	printf("batch-ranges %u\n", c->batch_ranges);
	printf("stats-interval %u\n", c->stats_interval);
	printf("wait-module %s\n", c->wait_module ? "yes" : "no");
	printf("backoff-max %u\n", c->backoff_max);
	printf("report-defer-rate %u\n", c->report_defer_rate);
	if (c->report_headroom == HEADROOM_AUTO)
		printf("report-headroom auto\n");
	else
		printf("report-headroom %u\n", c->report_headroom);
}

static void
agent_reload(struct agent *a)
{
	struct agent_conf c;
	char err[512];
	bool relink;

	sd_notify(0, "RELOADING=1");
	if (conf_load(a, &c, err, sizeof err) != 0) {
		log_warnx("reload: %s; keeping the old configuration", err);
		sd_notify(0, "READY=1");
		return;
	}
	if (strcmp(c.proc_dir, a->conf.proc_dir) != 0) {
		log_warnx("reload: proc-dir changes need a restart");
		free(c.proc_dir);
		c.proc_dir = xstrdup(a->conf.proc_dir);
	}
	relink = c.transport != a->conf.transport ||
	    c.vsock_cid != a->conf.vsock_cid ||
	    c.vsock_port != a->conf.vsock_port ||
	    strcmp(c.serial_path, a->conf.serial_path) != 0 ||
	    (c.unix_path == NULL) != (a->conf.unix_path == NULL) ||
	    (c.unix_path != NULL && strcmp(c.unix_path, a->conf.unix_path));
	conf_clear(&a->conf);
	a->conf = c;
	log_info("configuration reloaded%s", relink ? ", reconnecting" : "");
	if (relink && a->module) {
		session_free(a->session);
		a->session = NULL;
		hold_release(a->hold, "reconnecting");
		snapshot_drop(a->snapshot);
		transport_restart(a->transport);
	}
	agent_status(a);
	sd_notify(0, "READY=1");
}

static void
signal_cb(int sig, short what, void *arg)
{
	struct agent *a = arg;

	if (sig == SIGHUP)
		agent_reload(a);
	else
		agent_stop(a, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void
watchdog_cb(int fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

int
main(int argc, char *argv[])
{
	struct agent a;
	struct timeval tv;
	uint64_t wd_usec;
	char err[512];
	int ch, foreground = 0, verbose = 0, dump = 0, check = 0, rc;

	memset(&a, 0, sizeof a);
	a.conf_file = AGENT_CONF_FILE;
	while ((ch = getopt_long(argc, argv, "df:hnvV", long_options, NULL)) !=
	    -1) {
		switch (ch) {
		case 'd':
			foreground = 1;
			break;
		case 'f':
			a.conf_file = optarg;
			a.conf_explicit = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		case OPT_DUMP_CONFIG:
			dump = 1;
			break;
		case 'h':
		case OPT_HELP:
			usage(0);
		case 'V':
		case OPT_VERSION:
			printf("freehint-agent %s\n", FREEHINT_VERSION);
			return 0;
		case '?':
			usage(2);
		default:
			fh_cmdline_add(&cmdline, long_options, ch, optarg);
			break;
		}
	}
	if (optind != argc)
		usage(2);
	/* A bad value here is a usage error (2), in the file a
	 * configuration error (1): the command line's alone first. */
	conf_defaults(&a.conf);
	if (fh_cmdline_apply(&cmdline, conf_set, &a.conf, err, sizeof err) !=
	    0) {
		fprintf(stderr, "freehint-agent: %s\n", err);
		conf_clear(&a.conf);
		fh_cmdline_free(&cmdline);
		return 2;
	}
	conf_clear(&a.conf);
	/* Under systemd stderr goes to the journal: no syslog needed. */
	if (getenv("JOURNAL_STREAM") != NULL || getenv("NOTIFY_SOCKET") != NULL)
		foreground = 1;
	log_init("freehint-agent", foreground || dump || check, verbose);
	if (conf_load(&a, &a.conf, err, sizeof err) != 0) {
		/* Before any daemon setup: say it where it is seen. */
		fprintf(stderr, "freehint-agent: %s\n", err);
		return 1;
	}
	if (dump || check) {
		if (dump)
			conf_dump(&a.conf);
		conf_clear(&a.conf);
		fh_cmdline_free(&cmdline);
		return 0;
	}
	srandom(transport_seed());
	signal(SIGPIPE, SIG_IGN);
	a.page_size = (uint32_t)sysconf(_SC_PAGESIZE);

	if ((a.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	a.transport = transport_new(&a, agent_connected);
	a.ev_module = evtimer_new(a.base, agent_module_cb, &a);
	a.ev_sighup = evsignal_new(a.base, SIGHUP, signal_cb, &a);
	a.ev_sigterm = evsignal_new(a.base, SIGTERM, signal_cb, &a);
	a.ev_sigint = evsignal_new(a.base, SIGINT, signal_cb, &a);
	if (a.ev_module == NULL || a.ev_sighup == NULL ||
	    a.ev_sigterm == NULL || a.ev_sigint == NULL)
		fatalx("evsignal_new");
	evsignal_add(a.ev_sighup, NULL);
	evsignal_add(a.ev_sigterm, NULL);
	evsignal_add(a.ev_sigint, NULL);

	rc = agent_module(&a, 0);
	if (rc == -1 && a.conf.wait_module) {
		log_info("waiting for freehint.ko");
		event_active(a.ev_module, EV_TIMEOUT, 0);
	} else if (rc != 0) {
		sd_notifyf(0, "STATUS=%s",
		    rc == -1 ? "freehint.ko is not loaded (modprobe freehint)"
		             : "another freehint-agent holds the module");
		rc = rc == -1 ? AGENT_EXIT_NO_MODULE : 1;
		goto out;
	} else {
		a.hold = hold_new(&a);
		a.snapshot = snapshot_new(&a);
		transport_start(a.transport);
	}

	if (sd_watchdog_enabled(0, &wd_usec) > 0) {
		a.ev_watchdog =
		    event_new(a.base, -1, EV_PERSIST, watchdog_cb, NULL);
		if (a.ev_watchdog == NULL)
			fatalx("event_new");
		wd_usec /= 2;
		tv.tv_sec = (time_t)(wd_usec / 1000000);
		tv.tv_usec = (suseconds_t)(wd_usec % 1000000);
		event_add(a.ev_watchdog, &tv);
	}
	agent_status(&a);
	sd_notify(0, "READY=1");
	log_info("started (%s)", transport_kind_name(a.conf.transport));

	event_base_dispatch(a.base);
	rc = a.exit_code;
	if (!a.stopping)
		agent_stop(&a, "event loop ended");
out:
	session_free(a.session);
	hold_free(a.hold);
	snapshot_free(a.snapshot);
	report_free(a.report);
	transport_free(a.transport);
	if (a.ev_watchdog != NULL)
		event_free(a.ev_watchdog);
	event_free(a.ev_module);
	event_free(a.ev_sighup);
	event_free(a.ev_sigterm);
	event_free(a.ev_sigint);
	event_base_free(a.base);
	conf_clear(&a.conf);
	fh_cmdline_free(&cmdline);
	return rc;
}
