/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * policy.c: freehintctl set's KEY=VALUE words and a domain's metadata
 * make a VM's own keys on top of the daemon's policy, all or nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include <json-c/json.h>

#include "freehintd.h"

struct config *conf;
struct event_base *ev_base;

static const struct policy base = {
	.min_order = 9,
	.hint_min_order = 9,
	.max_bytes_sec = 1ULL << 30,
	.max_batches_sec = 200,
	.max_batch_ranges = 4096,
};

#define NS "xmlns:fh='" FREEHINT_XMLNS "'"

static int
set(struct policy_over *o, const char *words)
{
	char buf[256], *kv[8], *save = NULL;
	char err[256];
	int n = 0;

	snprintf(buf, sizeof buf, "%s", words);
	while (n < 8 && (kv[n] = strtok_r(n ? NULL : buf, " ", &save)) != NULL)
		n++;
	return policy_parse_set(o, kv, n, err, sizeof err);
}

/* The metadata xml on top of o; p gets the result. */
static int
meta(struct policy_over *o, const char *xml, struct policy *p)
{
	char err[256];
	int rc;

	rc = policy_parse_metadata(o, xml, err, sizeof err);
	policy_of(o, &base, p);
	return rc;
}

static void
test_set_applies(void **state)
{
	struct policy_over o = { { 0 }, { 0 } };
	struct policy p;

	assert_int_equal(set(&o,
	                     "min-order=4 hint-min-order=10 "
	                     "max-bytes-per-sec=2M max-batches-per-sec=7 "
	                     "discard=off"),
	    0);
	policy_of(&o, &base, &p);
	assert_int_equal(p.min_order, 4);
	assert_int_equal(p.hint_min_order, 10);
	assert_int_equal(p.max_bytes_sec, 2ULL << 20);
	assert_int_equal(p.max_batches_sec, 7);
	assert_true(p.no_discard);
	/* What the VM does not set stays the daemon's. */
	assert_int_equal(p.max_batch_ranges, 4096);
	assert_int_equal(set(&o, "discard=on min-order=default"), 0);
	policy_of(&o, &base, &p);
	assert_false(p.no_discard);
	assert_int_equal(p.min_order, 9);
	assert_int_equal(o.origin[POL_MIN_ORDER], POL_DAEMON);
}

/* One bad word: nothing changes, not even the good words before it. */
static void
test_set_all_or_nothing(void **state)
{
	static const char *const bad[] = { "min-order=21", "min-order=-1",
		"min-order=", "min-order", "=3", "bogus=1", "discard=yes",
		"max-bytes-per-sec=0", "max-batches-per-sec=0",
		"max-batches-per-sec=1000001", "min-order=3 discard=maybe",
		"min-order=3x", "MIN-ORDER=3" };
	struct policy_over o = { { 0 }, { 0 } }, before;
	size_t i;

	assert_int_equal(set(&o, "min-order=5"), 0);
	before = o;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(set(&o, bad[i]), -1);
		assert_memory_equal(&o, &before, sizeof o);
	}
	assert_int_equal(set(&o, ""), -1);
}

static void
test_metadata(void **state)
{
	struct policy_over o = { { 0 }, { 0 } };
	struct policy p;

	assert_int_equal(set(&o, "max-batches-per-sec=7 min-order=6"), 0);
	assert_int_equal(meta(&o,
	                     "<fh:policy " NS "><fh:min-order>3</fh:min-order>"
	                     "<fh:discard>off</fh:discard></fh:policy>",
	                     &p),
	    0);
	/* The metadata wins over set for its keys, and only for those. */
	assert_int_equal(p.min_order, 3);
	assert_true(p.no_discard);
	assert_int_equal(p.max_batches_sec, 7);
	assert_int_equal(o.origin[POL_MIN_ORDER], POL_METADATA);
	/* Blanks are not a number. */
	assert_int_equal(meta(&o,
	                     "<policy xmlns='" FREEHINT_XMLNS "'>"
	                     "<hint-min-order> 11 </hint-min-order></policy>",
	                     &p),
	    -1);
	/* Changed metadata replaces every key the old one gave. */
	assert_int_equal(meta(&o,
	                     "<policy xmlns='" FREEHINT_XMLNS "'>"
	                     "<hint-min-order>11</hint-min-order></policy>",
	                     &p),
	    0);
	assert_int_equal(p.hint_min_order, 11);
	assert_int_equal(p.min_order, 9);
	assert_false(p.no_discard);
	/* As libvirt hands it out: without its namespace. */
	assert_int_equal(
	    meta(&o, "<policy>\n  <min-order>2</min-order>\n</policy>\n", &p),
	    0);
	assert_int_equal(p.min_order, 2);
	assert_int_equal(p.hint_min_order, 9);
	/* Gone: the daemon's again. */
	assert_int_equal(meta(&o, NULL, &p), 0);
	assert_int_equal(p.hint_min_order, 9);
	assert_int_equal(p.max_batches_sec, 7);
}

static void
test_metadata_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"<policy",
		"<policy xmlns='urn:other'><min-order>3</min-order></policy>",
		"<other xmlns='" FREEHINT_XMLNS "'/>",
		"<policy xmlns='" FREEHINT_XMLNS "'><x>1</x></policy>",
		"<policy xmlns='" FREEHINT_XMLNS "'><min-order>99</min-order>"
		"</policy>",
		"<policy xmlns='" FREEHINT_XMLNS "'><min-order>3</min-order>"
		"<discard/></policy>",
		/* No entity is expanded, none fetched. */
		"<!DOCTYPE p [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
		"<policy xmlns='" FREEHINT_XMLNS "'><min-order>&e;</min-order>"
		"</policy>",
	};
	struct policy_over o = { { 0 }, { 0 } }, before;
	char err[256];
	size_t i;

	assert_int_equal(set(&o, "min-order=5"), 0);
	before = o;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_int_equal(
		    policy_parse_metadata(&o, bad[i], err, sizeof err), -1);
		assert_true(err[0] != '\0');
		assert_memory_equal(&o, &before, sizeof o);
	}
}

static void
test_json(void **state)
{
	struct policy_over o = { { 0 }, { 0 } };
	json_object *j, *v, *ov;

	assert_int_equal(set(&o, "min-order=4 discard=off"), 0);
	j = policy_json(&o, &base);
	assert_true(json_object_object_get_ex(j, "min-order", &v));
	assert_int_equal(json_object_get_int(v), 4);
	assert_true(json_object_object_get_ex(j, "hint-min-order", &v));
	assert_int_equal(json_object_get_int(v), 9);
	assert_true(json_object_object_get_ex(j, "discard", &v));
	assert_false(json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(j, "overrides", &ov));
	assert_int_equal(json_object_object_length(ov), 2);
	assert_true(json_object_object_get_ex(ov, "discard", &v));
	assert_string_equal(json_object_get_string(v), "set");
	json_object_put(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_applies),
		cmocka_unit_test(test_set_all_or_nothing),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_metadata_refused),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
