/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Configuration files. Each line is "key value" or "key = value", where
 * the key is a long option name of the program: the file and the command
 * line go through the same callback, so they cannot drift apart. '#'
 * starts a comment. Flags take no value, or yes/no. The file comes first,
 * the command line on top of it (fh_conf_apply), at start and at reload.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static char *trim(char *);
static const struct option *find_option(const struct option *, const char *);

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static const struct option *
find_option(const struct option *opts, const char *name)
{
	for (; opts->name != NULL; opts++)
		if (strcmp(opts->name, name) == 0)
			return opts;
	return NULL;
}

/*
 * Read path and hand each setting to cb. Returns 0; -1 with err set on the
 * first bad line (nothing after it is applied), or when the file cannot be
 * read (errno is kept, so callers can allow a missing default file).
 */
int
fh_conf_load(const char *path, const struct option *opts, fh_opt_cb cb,
    void *ctx, char *err, size_t errlen)
{
	const struct option *o;
	char *line = NULL, *key, *val, *p;
	size_t cap = 0;
	unsigned lineno = 0;
	int rc = -1, saved;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		saved = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		errno = saved;
		return -1;
	}
	while (getline(&line, &cap, f) != -1) {
		lineno++;
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		key = trim(line);
		if (*key == '\0')
			continue;
		val = key + strcspn(key, " \t=");
		if (*val != '\0') {
			*val++ = '\0';
			val = trim(val);
			if (*val == '=')
				val = trim(val + 1);
		}
		if ((o = find_option(opts, key)) == NULL) {
			snprintf(err, errlen, "%s:%u: unknown key '%s'", path,
			    lineno, key);
			goto out;
		}
		if (o->has_arg == no_argument) {
			if (strcmp(val, "no") == 0 ||
			    strcmp(val, "false") == 0 || strcmp(val, "0") == 0)
				continue;
			if (*val != '\0' && strcmp(val, "yes") != 0 &&
			    strcmp(val, "true") != 0 && strcmp(val, "1") != 0) {
				snprintf(err, errlen,
				    "%s:%u: '%s' takes yes or no", path, lineno,
				    key);
				goto out;
			}
			val = NULL;
		} else if (*val == '\0' && o->has_arg == required_argument) {
			snprintf(err, errlen, "%s:%u: '%s' needs a value", path,
			    lineno, key);
			goto out;
		} else if (*val == '\0')
			val =
			    NULL; /* as getopt gives an absent optional value */
		if (cb(o->val, o->name, val, ctx, err, errlen) != 0) {
			/* Prefix the callback's message with the place. */
			char msg[256];

			snprintf(msg, sizeof msg, "%s", err);
			snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(f);
	if (rc != 0)
		errno = EINVAL; /* a bad file, never "no such file" */
	return rc;
}

/* Keep a setting from the command line (arg is argv's, never freed). */
void
fh_cmdline_add(
    struct fh_cmdline *cl, const struct option *opts, int val, const char *arg)
{
	const struct option *o;

	for (o = opts; o->name != NULL && o->val != val; o++)
		;
	cl->opt = xreallocarray(cl->opt, cl->n + 1, sizeof *cl->opt);
	cl->opt[cl->n].val = val;
	cl->opt[cl->n].name = o->name != NULL ? o->name : "";
	cl->opt[cl->n].arg = arg;
	cl->n++;
}

void
fh_cmdline_free(struct fh_cmdline *cl)
{
	free(cl->opt);
	cl->opt = NULL;
	cl->n = 0;
}

/*
 * The file at path, then the command line's settings over it, through one
 * callback. A missing file is no error unless must_exist (the default
 * path may be absent; one named with -f may not).
 */
int
fh_conf_apply(const char *path, int must_exist, const struct option *opts,
    const struct fh_cmdline *cl, fh_opt_cb cb, void *ctx, char *err,
    size_t errlen)
{
	if (fh_conf_load(path, opts, cb, ctx, err, errlen) != 0 &&
	    (errno != ENOENT || must_exist))
		return -1;
	return fh_cmdline_apply(cl, cb, ctx, err, errlen);
}

/* The command line's options alone, in order; -1 at the first refused. */
int
fh_cmdline_apply(const struct fh_cmdline *cl, fh_opt_cb cb, void *ctx,
    char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < cl->n; i++)
		if (cb(cl->opt[i].val, cl->opt[i].name, cl->opt[i].arg, ctx,
		        err, errlen) != 0)
			return -1;
	return 0;
}

/*
 * Parse a decimal (or 0x hex) number within [min, max]. Never octal: a
 * leading zero ("010") is decimal, as a person writing a config means.
 */
int
fh_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int base = 10;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+' ||
	    isspace((unsigned char)*s))
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		base = 16;
		/* strtoull would take a second sign or 0x after the prefix. */
		if (!isxdigit((unsigned char)*s) ||
		    (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
			return -1;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Parse a byte count with an optional K, M, G or T (binary) suffix. */
int
fh_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'K':
	case 'k':
		shift = 10;
		break;
	case 'M':
	case 'm':
		shift = 20;
		break;
	case 'G':
	case 'g':
		shift = 30;
		break;
	case 'T':
	case 't':
		shift = 40;
		break;
	default:
		return -1;
	}
	if (*end != '\0' && end[1] != '\0' &&
	    !(end[1] == 'i' && end[2] == 'B' && end[3] == '\0') &&
	    !(end[1] == 'B' && end[2] == '\0'))
		return -1;
	if (shift != 0 && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}
