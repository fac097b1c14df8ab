/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * freehintctl: talks to freehintd over its control socket. One request,
 * one JSON answer. Exit status: 0 done, 1 failed, 2 usage, 3 the daemon
 * is not running, 4 no such VM, 5 not permitted, 6 (status) a VM shown
 * has an error.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common.h"

#define CTL_DEFAULT_SOCK "/run/freehint/freehintd.sock"
#define EXIT_FAILED      1
#define EXIT_USAGE       2
#define EXIT_NODAEMON    3
#define EXIT_UNKNOWN_VM  4
#define EXIT_DENIED      5
#define EXIT_VM_ERROR    6

static void usage(int) __attribute__((noreturn));

static const struct option longopts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "json", no_argument, NULL, 'j' },
	{ "socket", required_argument, NULL, 's' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};
static int request(const char *, const char *, json_object **);
static void print_table(json_object *);
static int status_pick(json_object *, const char *);
static void print_json(json_object *);
static const char *human(uint64_t, char *, size_t);
static uint64_t get_u64(json_object *, const char *);
static const char *get_str(json_object *, const char *);

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: freehintctl [-hV] [-s socket] status [--json] [NAME]\n"
	    "       freehintctl [-s socket] metrics\n"
	    "       freehintctl [-s socket] hint|release NAME\n"
	    "       freehintctl [-s socket] set NAME KEY=VALUE...\n"
	    "       freehintctl [-s socket] notify EVENT NAME\n"
	    "  -s, --socket PATH  freehintd's control socket, not "
	    "$FREEHINTD_SOCK or\n"
	    "                     " CTL_DEFAULT_SOCK "\n"
	    "  -h, --help         print this and exit\n"
	    "  -V, --version      print the version and exit\n");
	exit(status);
}

/*
 * Keep only the VM asked for (all when name is NULL). EXIT_UNKNOWN_VM
 * when there is none by that name, EXIT_VM_ERROR when a VM kept shows
 * an error, so that scripts and monitoring need not parse the table.
 */
static int
status_pick(json_object *reply, const char *name)
{
	json_object *arr, *keep, *v;
	size_t i;
	int rc = 0;

	if (!json_object_object_get_ex(reply, "vms", &arr))
		return EXIT_FAILED;
	keep = json_object_new_array();
	for (i = 0; i < json_object_array_length(arr); i++) {
		v = json_object_array_get_idx(arr, i);
		if (name != NULL && strcmp(get_str(v, "name"), name) != 0)
			continue;
		if (*get_str(v, "last_error") != '\0')
			rc = EXIT_VM_ERROR;
		json_object_array_add(keep, json_object_get(v));
	}
	if (name != NULL && json_object_array_length(keep) == 0)
		rc = EXIT_UNKNOWN_VM;
	json_object_object_add(reply, "vms", keep);
	return rc;
}

/* Exactly the documented keys, numbers as numbers. */
static void
print_json(json_object *reply)
{
	static const char *const keys[] = { "name", "connected", "transport",
		"mode", "mode_reason", "backing", "host_page_size", "ram_bytes",
		"guest_free_bytes", "reclaimed_bytes", "held_bytes",
		"returned_bytes", "ranges_applied", "ranges_rejected",
		"last_error", "discard_paused", "policy" };
	json_object *vmsa = json_object_new_array(), *arr, *out, *v, *o, *x;
	size_t i, k;

	json_object_object_get_ex(reply, "vms", &arr);
	for (i = 0; i < json_object_array_length(arr); i++) {
		v = json_object_array_get_idx(arr, i);
		o = json_object_new_object();
		for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			x = NULL;
			json_object_object_get_ex(v, keys[k], &x);
			json_object_object_add(o, keys[k], json_object_get(x));
		}
		json_object_array_add(vmsa, o);
	}
	out = json_object_new_object();
	json_object_object_add(out, "vms", vmsa);
	printf("%s\n",
	    json_object_to_json_string_ext(out, JSON_C_TO_STRING_SPACED));
	json_object_put(out);
}

static int
request(const char *path, const char *line, json_object **reply)
{
	struct sockaddr_un sun;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	if (fh_unix_addr(&sun, path) != 0) {
		fprintf(stderr, "freehintctl: socket path too long\n");
		return EXIT_USAGE;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		fprintf(stderr,
		    "freehintctl: freehintd is not running (%s: %s)\n", path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return EXIT_NODAEMON;
	}
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) ||
	    write(fd, "\n", 1) != 1) {
		fprintf(stderr, "freehintctl: write: %s\n", strerror(errno));
		close(fd);
		return EXIT_FAILED;
	}
	for (;;) {
		if ((buf = realloc(buf, len + 65536 + 1)) == NULL) {
			close(fd);
			return EXIT_FAILED;
		}
		if ((n = read(fd, buf + len, 65536)) <= 0)
			break;
		len += (size_t)n;
		if (len > (64u << 20))
			break;
	}
	close(fd);
	buf[len] = '\0';
	*reply = json_tokener_parse(buf);
	free(buf);
	if (*reply == NULL) {
		fprintf(stderr, "freehintctl: no answer from freehintd\n");
		return EXIT_FAILED;
	}
	return 0;
}

static uint64_t
get_u64(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_uint64(v);
}

static const char *
get_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return "";
	return json_object_get_string(v);
}

static const char *
human(uint64_t b, char *buf, size_t len)
{
	if (b >= (1ULL << 30))
		snprintf(buf, len, "%.1fG", (double)b / (1 << 30));
	else if (b >= (1ULL << 20))
		snprintf(buf, len, "%.1fM", (double)b / (1 << 20));
	else
		snprintf(buf, len, "%lluK", (unsigned long long)b >> 10);
	return buf;
}

static void
print_table(json_object *reply)
{
	json_object *arr, *v, *c;
	char b1[16], b2[16], b3[16], b4[16], b5[16], conn[24];
	size_t i;

	if (!json_object_object_get_ex(reply, "vms", &arr))
		return;
	printf("%-16s %-14s %-13s %8s %8s %9s %8s %8s %8s %8s  %s\n", "VM",
	    "CONNECTED", "MODE", "RAM", "FREE", "RECLAIMED", "RETURNED", "HELD",
	    "APPLIED", "REJECTED", "LAST ERROR");
	for (i = 0; i < json_object_array_length(arr); i++) {
		v = json_object_array_get_idx(arr, i);
		json_object_object_get_ex(v, "connected", &c);
		snprintf(conn, sizeof conn, "%s",
		    json_object_get_boolean(c) ? get_str(v, "transport")
		                               : "no");
		json_object_object_get_ex(v, "returned_bytes", &c);
		printf(
		    "%-16s %-14s %-13s %8s %8s %9s %8s %8s %8llu %8llu  %s\n",
		    get_str(v, "name"), conn, get_str(v, "mode"),
		    human(get_u64(v, "ram_bytes"), b1, sizeof b1),
		    human(get_u64(v, "guest_free_bytes"), b2, sizeof b2),
		    human(get_u64(v, "reclaimed_bytes"), b3, sizeof b3),
		    c != NULL ? human(json_object_get_uint64(c), b5, sizeof b5)
		              : "-",
		    human(get_u64(v, "held_bytes"), b4, sizeof b4),
		    (unsigned long long)get_u64(v, "ranges_applied"),
		    (unsigned long long)get_u64(v, "ranges_rejected"),
		    get_str(v, "last_error"));
		if (*get_str(v, "mode_reason") != '\0')
			printf(
			    "%-16s mode: %s\n", "", get_str(v, "mode_reason"));
		if (*get_str(v, "discard_paused") != '\0')
			printf("%-16s discards paused: %s\n", "",
			    get_str(v, "discard_paused"));
	}
}

int
main(int argc, char **argv)
{
	const char *sock = CTL_DEFAULT_SOCK;
	json_object *reply = NULL, *ok;
	const char *name = NULL;
	char line[512];
	int ch, rc, json = 0;
	size_t i, len;

	if (getenv("FREEHINTD_SOCK") != NULL)
		sock = getenv("FREEHINTD_SOCK");
	/* Options before or after the verb: "status --json" as the usage
	 * reads and "--json status" both work. */
	while ((ch = getopt_long(argc, argv, "hs:V", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(0);
		case 'V':
			printf("freehintctl %s\n", FREEHINT_VERSION);
			return 0;
		default:
			usage(EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage(EXIT_USAGE);
	if (strcmp(argv[0], "status") == 0 && argc <= 2) {
		name = argc == 2 ? argv[1] : NULL;
		snprintf(line, sizeof line, "status");
	} else if (json)
		usage(EXIT_USAGE);
	else if ((strcmp(argv[0], "hint") == 0 ||
	             strcmp(argv[0], "release") == 0) &&
	    argc == 2)
		snprintf(line, sizeof line, "%s %s", argv[0], argv[1]);
	else if (strcmp(argv[0], "notify") == 0 && argc == 3)
		snprintf(line, sizeof line, "notify %s %s", argv[1], argv[2]);
	else if (strcmp(argv[0], "metrics") == 0 && argc == 1)
		snprintf(line, sizeof line, "metrics");
	else if (strcmp(argv[0], "set") == 0 && argc >= 3) {
		/* Words of the request: none may hold a blank. */
		snprintf(line, sizeof line, "set");
		for (i = 1; i < (size_t)argc; i++) {
			if (strpbrk(argv[i], " \t") != NULL)
				usage(EXIT_USAGE);
			len = strlen(line);
			snprintf(line + len, sizeof line - len, " %s", argv[i]);
		}
	} else
		usage(EXIT_USAGE);
	if (strpbrk(line, "\n\r") != NULL || strlen(line) > 400)
		usage(EXIT_USAGE);
	if ((rc = request(sock, line, &reply)) != 0)
		return rc;
	if (!json_object_object_get_ex(reply, "ok", &ok) ||
	    !json_object_get_boolean(ok)) {
		fprintf(stderr, "freehintctl: %s: %s\n", argv[0],
		    get_str(reply, "error"));
		rc = strcmp(get_str(reply, "code"), "unknown-vm") == 0
		    ? EXIT_UNKNOWN_VM
		    : strcmp(get_str(reply, "code"), "usage") == 0 ? EXIT_USAGE
		    : strcmp(get_str(reply, "code"), "denied") == 0
		    ? EXIT_DENIED
		    : EXIT_FAILED;
		json_object_put(reply);
		return rc;
	}
	if (strcmp(argv[0], "metrics") == 0)
		fputs(get_str(reply, "metrics"), stdout);
	if (strcmp(argv[0], "status") == 0) {
		rc = status_pick(reply, name);
		if (rc == EXIT_UNKNOWN_VM)
			fprintf(stderr, "freehintctl: status: no VM named %s\n",
			    name);
		else if (json)
			print_json(reply);
		else
			print_table(reply);
		json_object_put(reply);
		return rc;
	}
	json_object_put(reply);
	return 0;
}
