/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A fake QEMU for freehintd's black-box tests: a process that maps FILE
 * shared (read-only or read-write, as a QEMU taken over by its guest
 * could) and answers, on a QMP unix socket, that this mapping is the
 * guest's RAM: "qom-get /machine memory-backend" names block mem0, "info
 * mtree -f" has one RAM region of mem0 the size of FILE at guest-physical
 * 0, and "gpa2hva" points into the mapping. Any other command returns {}.
 * Files named after the mode stay open (a VFIO or vDPA device node, say).
 * Serves one client at a time until killed.
 *
 *   fh-fakeqemu SOCK FILE ro|rw [HOLD...]
 *
 * With FH_FAKEQEMU_FORK set, a child serves the monitor (it has the same
 * mapping and the listening socket) while the process that listened,
 * the one SO_PEERCRED names, only waits to be killed: a QEMU that exits
 * while its monitor connection stays up. "ready" then gives both pids.
 * With FH_FAKEQEMU_HANDOFF set as well, the process that listened closes
 * the listening socket: it is then some QEMU process that SO_PEERCRED
 * still names while another process answers on its socket.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common.h"

static uint8_t *base;
static uint64_t size;

static void serve(int);
static json_object *answer(json_object *);
static char *hmp(const char *);
static int send_json(int, json_object *);

static char *
hmp(const char *cmd)
{
	unsigned long long gpa;
	char *out = NULL;

	if (strcmp(cmd, "qom-get /machine memory-backend") == 0)
		out = strdup("\"/objects/mem0\"\r\n");
	else if (strcmp(cmd, "info mtree -f") == 0) {
		if (asprintf(&out,
		        "FlatView #0\r\n"
		        " AS \"memory\", root: system\r\n"
		        " Root memory region: system\r\n"
		        "  0000000000000000-%016" PRIx64
		        " (prio 0, ram): mem0\r\n"
		        "\r\n",
		        size - 1) == -1)
			out = NULL;
	} else if (sscanf(cmd, "gpa2hva %llx", &gpa) == 1 && gpa < size) {
		if (asprintf(&out,
		        "Host virtual address for 0x%llx (mem0) is %p\r\n", gpa,
		        (void *)(base + gpa)) == -1)
			out = NULL;
	} else
		out = strdup("");
	return out;
}

static json_object *
answer(json_object *req)
{
	json_object *r, *exec, *args, *cl, *id;
	char *out;

	r = json_object_new_object();
	if (json_object_object_get_ex(req, "id", &id))
		json_object_object_add(r, "id", json_object_get(id));
	if (json_object_object_get_ex(req, "execute", &exec) &&
	    strcmp(json_object_get_string(exec), "human-monitor-command") ==
	        0 &&
	    json_object_object_get_ex(req, "arguments", &args) &&
	    json_object_object_get_ex(args, "command-line", &cl) &&
	    (out = hmp(json_object_get_string(cl))) != NULL) {
		json_object_object_add(
		    r, "return", json_object_new_string(out));
		free(out);
	} else
		json_object_object_add(r, "return", json_object_new_object());
	return r;
}

static int
send_json(int fd, json_object *o)
{
	const char *s;
	size_t len, off = 0;
	ssize_t n;

	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	len = strlen(s);
	while (off < len) {
		if ((n = write(fd, s + off, len - off)) <= 0)
			return -1;
		off += (size_t)n;
	}
	return write(fd, "\r\n", 2) == 2 ? 0 : -1;
}

static void
serve(int fd)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *greeting, *req, *rep;
	char buf[4096];
	ssize_t n;
	size_t off;

	greeting = json_tokener_parse(
	    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
	    "\"major\": 7}, \"package\": \"fake\"}, \"capabilities\": []}}");
	if (send_json(fd, greeting) != 0)
		goto out;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		off = 0;
		while (off < (size_t)n) {
			req = json_tokener_parse_ex(
			    tok, buf + off, (int)((size_t)n - off));
			off += json_tokener_get_parse_end(tok);
			if (req == NULL) {
				if (json_tokener_get_error(tok) ==
				    json_tokener_continue)
					break;
				json_tokener_reset(tok);
				off++;
				continue;
			}
			rep = answer(req);
			json_object_put(req);
			if (send_json(fd, rep) != 0) {
				json_object_put(rep);
				goto out;
			}
			json_object_put(rep);
		}
	}
out:
	json_object_put(greeting);
	json_tokener_free(tok);
}

int
main(int argc, char **argv)
{
	struct stat st;
	int lfd, cfd, ffd, i, rw;

	if (argc < 4 ||
	    (strcmp(argv[3], "ro") != 0 && strcmp(argv[3], "rw") != 0)) {
		fprintf(
		    stderr, "usage: fh-fakeqemu SOCK FILE ro|rw [HOLD...]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	rw = strcmp(argv[3], "rw") == 0;
	if ((ffd = open(argv[2], rw ? O_RDWR : O_RDONLY)) == -1 ||
	    fstat(ffd, &st) != 0 || st.st_size <= 0) {
		perror(argv[2]);
		return 2;
	}
	size = (uint64_t)st.st_size;
	base = mmap(
	    NULL, size, PROT_READ | (rw ? PROT_WRITE : 0), MAP_SHARED, ffd, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	close(ffd);
	for (i = 4; i < argc; i++)
		if (open(argv[i], O_RDONLY) == -1) {
			perror(argv[i]);
			return 2;
		}
	if ((lfd = fh_unix_listen(argv[1], 4, 0)) == -1) {
		perror(argv[1]);
		return 2;
	}
	if (getenv("FH_FAKEQEMU_FORK") != NULL) {
		fflush(stdout);
		if ((cfd = fork()) == -1) {
			perror("fork");
			return 2;
		}
		if (cfd > 0) {
			if (getenv("FH_FAKEQEMU_HANDOFF") != NULL)
				close(lfd);
			printf("ready %p pid %d child %d\n", (void *)base,
			    (int)getpid(), cfd);
			fflush(stdout);
			for (;;)
				pause();
		}
	} else {
		printf("ready %p\n", (void *)base);
		fflush(stdout);
	}
	for (;;) {
		if ((cfd = accept(lfd, NULL, NULL)) == -1) {
			if (errno == EINTR)
				continue;
			perror("accept");
			return 1;
		}
		serve(cfd);
		close(cfd);
	}
}
