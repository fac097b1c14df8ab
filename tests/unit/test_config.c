/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Configuration files (keys are the long option names, flags yes/no,
 * errors with file:line) and the number parsers behind the options.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "common.h"

struct seen {
	int n;
	int val[16];
	char arg[16][64];
};

static const struct option opts[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "foreground", no_argument, NULL, 'd' },
	{ "batch-ranges", required_argument, NULL, 'b' },
	{ "log-level", optional_argument, NULL, 'v' },
	{ NULL, 0, NULL, 0 },
};

static int record(int, const char *, const char *, void *, char *, size_t);
static int load(const char *text, struct seen *, char *err, size_t);

/* Records every option; refuses a batch-ranges that is not a number. */
static int
record(int val, const char *name, const char *arg, void *ctx, char *err,
    size_t errlen)
{
	struct seen *s = ctx;
	uint64_t v;

	if (val == 'b' && fh_parse_u64(arg, 1, 16384, &v) != 0) {
		snprintf(err, errlen, "bad %s '%s'", name, arg);
		return -1;
	}
	assert_true(s->n < 16);
	s->val[s->n] = val;
	snprintf(s->arg[s->n], sizeof s->arg[0], "%s", arg ? arg : "(null)");
	s->n++;
	return 0;
}

/* Write text to a temporary file and load it. */
static int
load(const char *text, struct seen *s, char *err, size_t errlen)
{
	char path[] = "/tmp/fh-test-conf.XXXXXX";
	size_t len;
	int fd, rc;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	memset(s, 0, sizeof *s);
	rc = fh_conf_load(path, opts, record, s, err, errlen);
	/* Messages name the file; make them comparable. */
	len = strlen(path);
	if (rc != 0 && strncmp(err, path, len) == 0) {
		memmove(err + 1, err + len, strlen(err + len) + 1);
		err[0] = 'F';
	}
	unlink(path);
	return rc;
}

static void
test_good_file(void **state)
{
	struct seen s;
	char err[256];

	assert_int_equal(load("# comment\n"
	                      "\n"
	                      "listen /run/fh.sock   # trailing comment\n"
	                      "  batch-ranges = 1024\n"
	                      "batch-ranges=0x10\n"
	                      "foreground\n"
	                      "foreground yes\n"
	                      "foreground no\n"
	                      "foreground = true\n"
	                      "log-level\n"
	                      "log-level debug\n"
	                      "listen\tsome where",
	                     &s, err, sizeof err),
	    0);
	assert_int_equal(s.n, 9);
	assert_int_equal(s.val[0], 'l');
	assert_string_equal(s.arg[0], "/run/fh.sock");
	assert_string_equal(s.arg[1], "1024");
	assert_string_equal(s.arg[2], "0x10");
	/* Flags get no argument; "no" leaves them as they were. */
	assert_int_equal(s.val[3], 'd');
	assert_string_equal(s.arg[3], "(null)");
	assert_string_equal(s.arg[4], "(null)");
	assert_int_equal(s.val[5], 'd');
	assert_string_equal(s.arg[6], "(null)");
	assert_string_equal(s.arg[7], "debug");
	/* The last line has no newline, and a value may hold blanks. */
	assert_string_equal(s.arg[8], "some where");
	/* An optional argument given no value is absent, as with getopt. */
	assert_int_equal(s.val[6], 'v');
}

static void
test_errors(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
		int applied;
	} cases[] = {
		{ "listen a\nbogus 1\nlisten b\n", "F:2: unknown key 'bogus'",
		    1 },
		{ "foreground maybe\n", "F:1: 'foreground' takes yes or no",
		    0 },
		{ "\n\nlisten\n", "F:3: 'listen' needs a value", 0 },
		{ "listen = \n", "F:1: 'listen' needs a value", 0 },
		{ "batch-ranges 0\n", "F:1: bad batch-ranges '0'", 0 },
		{ "foreground\nbatch-ranges 16385\n",
		    "F:2: bad batch-ranges '16385'", 1 },
		{ "Listen x\n", "F:1: unknown key 'Listen'", 0 },
	};
	struct seen s;
	char err[256];
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(cases); i++) {
		assert_int_equal(load(cases[i].text, &s, err, sizeof err), -1);
		assert_string_equal(err, cases[i].msg);
		assert_int_equal(s.n, cases[i].applied);
	}
}

static void
test_missing_file(void **state)
{
	struct seen s = { 0 };
	char err[256];

	errno = 0;
	assert_int_equal(fh_conf_load("/nonexistent/fh.conf", opts, record, &s,
	                     err, sizeof err),
	    -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "/nonexistent/fh.conf: "));
	assert_int_equal(s.n, 0);
	/* A directory is not a file. */
	assert_int_equal(
	    fh_conf_load("/", opts, record, &s, err, sizeof err), -1);
}

/* The file first, the command line over it, in its order; a missing
 * default file is no error, a named one is, and a bad file is never
 * taken for a missing one. */
static void
test_apply(void **state)
{
	char path[] = "/tmp/fh-test-conf.XXXXXX";
	const char *text = "listen file\nbatch-ranges 7\n";
	struct fh_cmdline cl = { 0 };
	struct seen s = { 0 };
	char err[256];
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	fh_cmdline_add(&cl, opts, 'b', "9");
	fh_cmdline_add(&cl, opts, 'd', NULL);
	assert_int_equal(cl.n, 2);
	assert_string_equal(cl.opt[0].name, "batch-ranges");
	assert_int_equal(
	    fh_conf_apply(path, 1, opts, &cl, record, &s, err, sizeof err), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.arg[0], "file");
	assert_string_equal(s.arg[1], "7");
	assert_string_equal(s.arg[2], "9"); /* the command line wins */
	assert_int_equal(s.val[3], 'd');

	memset(&s, 0, sizeof s);
	assert_int_equal(fh_conf_apply("/nonexistent/fh.conf", 0, opts, &cl,
	                     record, &s, err, sizeof err),
	    0);
	assert_int_equal(s.n, 2);
	memset(&s, 0, sizeof s);
	assert_int_equal(fh_conf_apply("/nonexistent/fh.conf", 1, opts, &cl,
	                     record, &s, err, sizeof err),
	    -1);
	assert_int_equal(s.n, 0);

	/* A bad line stops everything, even with errno left at ENOENT. */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "nosuch 1\n", 9), 9);
	close(fd);
	memset(&s, 0, sizeof s);
	errno = ENOENT;
	assert_int_equal(
	    fh_conf_apply(path, 0, opts, &cl, record, &s, err, sizeof err), -1);
	assert_int_equal(s.n, 0);
	unlink(path);
	fh_cmdline_free(&cl);
	assert_int_equal(cl.n, 0);
}

static void
test_parse_u64(void **state)
{
	static const struct {
		const char *s;
		uint64_t min, max;
		int rc;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 10, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "11", 0, 10, -1, 0 },
		{ "4", 5, 10, -1, 0 },
		{ "010", 0, 100, 0, 10 }, /* decimal, never octal */
		{ "0x10", 0, 100, 0, 16 },
		{ "0XfF", 0, 1000, 0, 255 },
		{ "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
		{ "0xffffffffffffffff", 0, UINT64_MAX, 0, UINT64_MAX },
		{ "18446744073709551616", 0, UINT64_MAX, -1, 0 },
		{ "-1", 0, UINT64_MAX, -1, 0 },
		{ "+1", 0, 10, -1, 0 },
		{ " 1", 0, 10, -1, 0 },
		{ "1 ", 0, 10, -1, 0 },
		{ "", 0, 10, -1, 0 },
		{ "0x", 0, 10, -1, 0 },
		{ "0x-1", 0, UINT64_MAX, -1, 0 },
		{ "0x0x1", 0, 10, -1, 0 },
		{ "1k", 0, 10000, -1, 0 },
		{ "abc", 0, 10, -1, 0 },
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(cases); i++) {
		v = 12345;
		assert_int_equal(
		    fh_parse_u64(cases[i].s, cases[i].min, cases[i].max, &v),
		    cases[i].rc);
		assert_int_equal(v, cases[i].rc == 0 ? cases[i].v : 12345);
	}
	assert_int_equal(fh_parse_u64(NULL, 0, 1, &v), -1);
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "4k", 0, 4096 },
		{ "4K", 0, 4096 },
		{ "2M", 0, 2 << 20 },
		{ "2MiB", 0, 2 << 20 },
		{ "2MB", 0, 2 << 20 },
		{ "16G", 0, 16ULL << 30 },
		{ "1T", 0, 1ULL << 40 },
		{ "16777215T", 0, 16777215ULL << 40 },
		{ "16777216T", -1, 0 }, /* 2^64: wraps */
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -1, 0 },
		{ "2Mi", -1, 0 },
		{ "2MiBs", -1, 0 },
		{ "2X", -1, 0 },
		{ "M", -1, 0 },
		{ "-1", -1, 0 },
		{ "+1", -1, 0 },
		{ " 1", -1, 0 },
		{ "", -1, 0 },
		{ "0x10", -1, 0 },
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(cases); i++) {
		v = 12345;
		assert_int_equal(fh_parse_size(cases[i].s, &v), cases[i].rc);
		assert_int_equal(v, cases[i].rc == 0 ? cases[i].v : 12345);
	}
	assert_int_equal(fh_parse_size(NULL, &v), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
