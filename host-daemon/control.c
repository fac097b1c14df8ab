/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control socket for freehintctl: one request line per connection
 * ("status", "hint NAME", "release NAME", "notify EVENT NAME"), one JSON
 * object back, then the daemon closes. Mode 0600, or 0660 with a group.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>

#include "freehintd.h"
#ifdef HAVE_LIBVIRT
#include "libvirt.h"
#endif

#define CONTROL_LINE_MAX 512

static struct evconnlistener *control_listener;
static char *control_path;

static void control_accept(
    struct evconnlistener *, evutil_socket_t, struct sockaddr *, int, void *);
static void control_read(struct bufferevent *, void *);
static void control_write(struct bufferevent *, void *);
static void control_event(struct bufferevent *, short, void *);
static json_object *control_status(void);
static json_object *control_do(char *);
static json_object *reply_error(const char *, const char *);

int
control_open(const char *path, const char *group)
{
	struct sockaddr_un sun;
	struct group *gr = NULL;
	mode_t old;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		log_warnx("control socket path too long: %s", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (group != NULL && (gr = getgrnam(group)) == NULL) {
		log_warnx("control group %s: no such group", group);
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		log_warn("unlink %s", path);
		return -1;
	}
	old = umask(gr != NULL ? 0117 : 0177);
	control_listener = evconnlistener_new_bind(ev_base, control_accept,
	    NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 8,
	    (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (control_listener == NULL) {
		log_warn("control socket %s", path);
		return -1;
	}
	if (gr != NULL && chown(path, (uid_t)-1, gr->gr_gid) != 0) {
		log_warn("chown %s", path);
		control_close();
		return -1;
	}
	control_path = xstrdup(path);
	return 0;
}

void
control_close(void)
{
	if (control_listener != NULL) {
		evconnlistener_free(control_listener);
		control_listener = NULL;
	}
	if (control_path != NULL) {
		unlink(control_path);
		free(control_path);
		control_path = NULL;
	}
}

static void
control_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent *bev;
	struct timeval tv = { 5, 0 };

	evutil_make_socket_nonblocking(fd);
	bev = bufferevent_socket_new(ev_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setwatermark(bev, EV_READ, 0, CONTROL_LINE_MAX);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_setcb(bev, control_read, NULL, control_event, NULL);
	bufferevent_enable(bev, EV_READ);
}

static void
control_event(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

static void
control_write(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
control_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	json_object *reply;
	char *line;
	size_t len;

	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) < CONTROL_LINE_MAX)
			return;
		reply = reply_error("usage", "request too long");
	} else {
		reply = control_do(line);
		free(line);
	}
	bufferevent_disable(bev, EV_READ);
	evbuffer_add_printf(bufferevent_get_output(bev), "%s\n",
	    json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
	json_object_put(reply);
	bufferevent_setcb(bev, NULL, control_write, control_event, NULL);
	bufferevent_enable(bev, EV_WRITE);
}

static json_object *
reply_error(const char *code, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "code", json_object_new_string(code));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static json_object *
control_status(void)
{
	json_object *o, *arr, *v;
	struct vm *vm;

	arr = json_object_new_array();
	TAILQ_FOREACH(vm, &vms, entry)
	{
		v = json_object_new_object();
		json_object_object_add(
		    v, "name", json_object_new_string(vm->name));
		json_object_object_add(
		    v, "connected", json_object_new_boolean(vm->guest != NULL));
		json_object_object_add(v, "transport",
		    json_object_new_string(vm_transport_name(vm->transport)));
		json_object_object_add(
		    v, "mode", json_object_new_string(vm_mode_name(vm->mode)));
		json_object_object_add(v, "mode_reason",
		    json_object_new_string(vm->mode_why ? vm->mode_why : ""));
		/* The backing the map found, and its host page size (the
		 * unit of every discard; 0 without a backing fd). */
		json_object_object_add(v, "backing",
		    json_object_new_string(memmap_kind_name(vm->map.kind)));
		json_object_object_add(v, "host_page_size",
		    json_object_new_uint64(
		        vm->map.n > 0 && vm->map.r[0].fd != -1
		            ? vm->map.r[0].pagesz
		            : 0));
		json_object_object_add(v, "ram_bytes",
		    json_object_new_uint64(memmap_ram_bytes(&vm->map)));
		json_object_object_add(v, "guest_free_bytes",
		    json_object_new_uint64(vm->guest_free_bytes));
		json_object_object_add(v, "reclaimed_bytes",
		    json_object_new_uint64(vm->reclaimed_bytes));
		json_object_object_add(
		    v, "held_bytes", json_object_new_uint64(vm->held_bytes));
		json_object_object_add(v, "ranges_applied",
		    json_object_new_uint64(vm->ranges_applied));
		json_object_object_add(v, "ranges_rejected",
		    json_object_new_uint64(vm->ranges_rejected));
		json_object_object_add(
		    v, "last_error", json_object_new_string(vm->last_error));
		json_object_array_add(arr, v);
	}
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "vms", arr);
	return o;
}

static json_object *
control_do(char *line)
{
	char *argv[4], *save = NULL, msg[256];
	json_object *o;
	struct vm *vm;
	int argc = 0, rc;

	while (argc < 4 &&
	    (argv[argc] = strtok_r(argc == 0 ? line : NULL, " \t\r", &save)) !=
	        NULL)
		argc++;
	if (argc == 0)
		return reply_error("usage", "empty request");
	if (strcmp(argv[0], "status") == 0 && argc == 1)
		return control_status();
	if (strcmp(argv[0], "notify") == 0 && argc == 3) {
#ifdef HAVE_LIBVIRT
		if (vl_notify(argv[1], argv[2], msg, sizeof msg) != 0)
			return reply_error("failed", msg);
		o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		return o;
#else
		return reply_error("failed", "built without libvirt");
#endif
	}
	if ((strcmp(argv[0], "hint") != 0 && strcmp(argv[0], "release") != 0) ||
	    argc != 2)
		return reply_error("usage", "unknown request");
	if ((vm = vm_find(argv[1])) == NULL)
		return reply_error("unknown-vm", "no such VM");
	msg[0] = '\0';
	if (strcmp(argv[0], "hint") == 0)
		rc = vm_hint(vm, msg, sizeof msg);
	else
		rc = vm_release(vm, msg, sizeof msg);
	if (rc != 0)
		return reply_error(
		    "failed", msg[0] ? msg : "agent unreachable");
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}
