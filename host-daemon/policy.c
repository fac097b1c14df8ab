/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One VM's policy: the daemon's (struct policy, from the configuration)
 * with the VM's own keys on top, set at run time (freehintctl set) or
 * carried by the VM (libvirt <metadata>, see docs/libvirt.md). The VM
 * keeps only its overrides, never a whole copy: a reload or a default the
 * daemon derives later still reaches every key the VM does not set.
 * Parsing is all or nothing: a bad key or value changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "freehintd.h"

/* Values of a key in the text of a request or of the metadata. */
enum pol_type { PT_ORDER, PT_COUNT, PT_SIZE, PT_BOOL };

struct pol_key {
	const char *name;
	enum pol_type type;
};

static const struct pol_key pol_keys[POL_NKEYS] = {
	[POL_MIN_ORDER] = { "min-order", PT_ORDER },
	[POL_HINT_MIN_ORDER] = { "hint-min-order", PT_ORDER },
	[POL_MAX_BYTES_SEC] = { "max-bytes-per-sec", PT_SIZE },
	[POL_MAX_BATCHES_SEC] = { "max-batches-per-sec", PT_COUNT },
	[POL_DISCARD] = { "discard", PT_BOOL },
};

static const char *const pol_origins[] = {
	[POL_DAEMON] = "daemon",
	[POL_SET] = "set",
	[POL_METADATA] = "metadata",
};

static int pol_find(const char *, size_t);
static int pol_value(int, const char *, uint64_t *, char *, size_t);
static uint64_t pol_get(const struct policy *, int);

static int
pol_find(const char *name, size_t len)
{
	int k;

	for (k = 0; k < POL_NKEYS; k++)
		if (strlen(pol_keys[k].name) == len &&
		    strncmp(pol_keys[k].name, name, len) == 0)
			return k;
	return -1;
}

/* The same ranges as the daemon's own options (main.c). */
static int
pol_value(int k, const char *s, uint64_t *v, char *err, size_t errlen)
{
	int rc = -1;

	switch (pol_keys[k].type) {
	case PT_ORDER:
		rc = fh_parse_u64(s, 0, 20, v);
		break;
	case PT_COUNT:
		rc = fh_parse_u64(s, 1, 1000000, v);
		break;
	case PT_SIZE:
		rc = fh_parse_size(s, v) != 0 || *v == 0 ? -1 : 0;
		break;
	case PT_BOOL:
		if (strcmp(s, "on") == 0 || strcmp(s, "off") == 0) {
			*v = strcmp(s, "on") == 0;
			rc = 0;
		}
		break;
	}
	if (rc != 0) {
		char vis[64];

		fh_strvis(vis, sizeof vis, s);
		snprintf(err, errlen, "%s: bad value '%s' (%s)",
		    pol_keys[k].name, vis,
		    pol_keys[k].type == PT_ORDER       ? "0 to 20"
		        : pol_keys[k].type == PT_COUNT ? "1 to 1000000"
		        : pol_keys[k].type == PT_SIZE  ? "a size above 0"
		                                       : "on or off");
	}
	return rc;
}

/* The effective policy: base, with every key the VM sets. */
void
policy_of(
    const struct policy_over *o, const struct policy *base, struct policy *out)
{
	*out = *base;
	if (o->origin[POL_MIN_ORDER] != POL_DAEMON)
		out->min_order = (uint32_t)o->val[POL_MIN_ORDER];
	if (o->origin[POL_HINT_MIN_ORDER] != POL_DAEMON)
		out->hint_min_order = (uint32_t)o->val[POL_HINT_MIN_ORDER];
	if (o->origin[POL_MAX_BYTES_SEC] != POL_DAEMON)
		out->max_bytes_sec = o->val[POL_MAX_BYTES_SEC];
	if (o->origin[POL_MAX_BATCHES_SEC] != POL_DAEMON)
		out->max_batches_sec = (uint32_t)o->val[POL_MAX_BATCHES_SEC];
	if (o->origin[POL_DISCARD] != POL_DAEMON)
		out->no_discard = o->val[POL_DISCARD] == 0;
}

static uint64_t
pol_get(const struct policy *p, int k)
{
	switch (k) {
	case POL_MIN_ORDER:
		return p->min_order;
	case POL_HINT_MIN_ORDER:
		return p->hint_min_order;
	case POL_MAX_BYTES_SEC:
		return p->max_bytes_sec;
	case POL_MAX_BATCHES_SEC:
		return p->max_batches_sec;
	default:
		return !p->no_discard;
	}
}

/* The daemon's policy before its configuration file and options. */
void
policy_defaults(struct policy *p)
{
	memset(p, 0, sizeof *p);
	p->min_order = 9;
	p->max_batch_ranges = 4096;
	p->max_batch_bytes = 1ULL << 30;
	p->max_batches_sec = 200;
	p->max_bytes_sec = 16ULL << 30;
	p->max_faults = 8;
	p->hint_min_order = FREEHINTD_ORDER_AUTO;
	p->migration_hold_ms = 5000;
	p->migration_link_bps = 1ULL << 30;
	p->hint_pass_bps = 512ULL << 20;
	p->stats_interval_ms = 2000;
}

/*
 * "KEY=VALUE" words of freehintctl set, into o only when every one is
 * good. VALUE "default" gives the key back to the daemon's policy.
 */
int
policy_parse_set(
    struct policy_over *o, char **kv, int n, char *err, size_t errlen)
{
	struct policy_over t = *o;
	const char *eq;
	char vis[64];
	int i, k;

	if (n == 0) {
		snprintf(err, errlen, "nothing to set (KEY=VALUE...)");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((eq = strchr(kv[i], '=')) == NULL ||
		    (k = pol_find(kv[i], (size_t)(eq - kv[i]))) == -1) {
			fh_strvis(vis, sizeof vis, kv[i]);
			snprintf(err, errlen,
			    "'%s': not KEY=VALUE with a known key (min-order, "
			    "hint-min-order, max-bytes-per-sec, "
			    "max-batches-per-sec, discard)",
			    vis);
			return -1;
		}
		if (strcmp(eq + 1, "default") == 0) {
			t.origin[k] = POL_DAEMON;
			t.val[k] = 0;
			continue;
		}
		if (pol_value(k, eq + 1, &t.val[k], err, errlen) != 0)
			return -1;
		t.origin[k] = POL_SET;
	}
	*o = t;
	return 0;
}

/*
 * The VM's <policy> element (virDomainGetMetadata's text, or NULL
 * when the domain has none): its keys replace every key the metadata gave
 * before, and win over freehintctl set (the VM's word is the later one).
 */
int
policy_parse_metadata(
    struct policy_over *o, const char *xml, char *err, size_t errlen)
{
	struct policy_over t = *o;
	xmlDocPtr doc = NULL;
	xmlNodePtr root, n;
	xmlChar *text;
	char vis[64];
	int k, rc = -1;

	for (k = 0; k < POL_NKEYS; k++)
		if (t.origin[k] == POL_METADATA)
			t.origin[k] = POL_DAEMON;
	if (xml == NULL)
		goto done;
	doc = xmlReadMemory(xml, (int)strnlen(xml, 1 << 20), "metadata", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL || (root = xmlDocGetRootElement(doc)) == NULL) {
		snprintf(err, errlen, "metadata: not XML");
		goto out;
	}
	/* libvirt never hands out a DTD: entities have no business here. */
	if (doc->intSubset != NULL || doc->extSubset != NULL) {
		snprintf(err, errlen, "metadata: a DTD");
		goto out;
	}
	/* libvirt hands the element out of its namespace (it picked it by
	 * namespace already); as written in the domain it is in ours. */
	if ((root->ns != NULL &&
	        strcmp((const char *)root->ns->href, FREEHINT_XMLNS) != 0) ||
	    strcmp((const char *)root->name, "policy") != 0) {
		snprintf(err, errlen, "metadata: not a <policy> of %s",
		    FREEHINT_XMLNS);
		goto out;
	}
	for (n = root->children; n != NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if ((k = pol_find((const char *)n->name,
		         strlen((const char *)n->name))) == -1) {
			fh_strvis(vis, sizeof vis, (const char *)n->name);
			snprintf(
			    err, errlen, "metadata: unknown key <%s>", vis);
			goto out;
		}
		text = xmlNodeGetContent(n);
		rc = pol_value(k, text != NULL ? (const char *)text : "",
		    &t.val[k], err, errlen);
		xmlFree(text);
		if (rc != 0)
			goto out;
		rc = -1;
		t.origin[k] = POL_METADATA;
	}
done:
	*o = t;
	rc = 0;
out:
	if (doc != NULL)
		xmlFreeDoc(doc);
	return rc;
}

/* {"min-order": 9, ..., "discard": true, "overrides": {"min-order": "set"}} */
json_object *
policy_json(const struct policy_over *o, const struct policy *base)
{
	json_object *j = json_object_new_object(), *ov;
	struct policy p;
	int k;

	policy_of(o, base, &p);
	ov = json_object_new_object();
	for (k = 0; k < POL_NKEYS; k++) {
		if (k == POL_HINT_MIN_ORDER &&
		    p.hint_min_order == FREEHINTD_ORDER_AUTO)
			/* Derived from the backing (vm_pass_policy). */
			json_object_object_add(j, pol_keys[k].name,
			    json_object_new_string("auto"));
		else
			json_object_object_add(j, pol_keys[k].name,
			    pol_keys[k].type == PT_BOOL
			        ? json_object_new_boolean(pol_get(&p, k) != 0)
			        : json_object_new_uint64(pol_get(&p, k)));
		if (o->origin[k] != POL_DAEMON)
			json_object_object_add(ov, pol_keys[k].name,
			    json_object_new_string(pol_origins[o->origin[k]]));
	}
	json_object_object_add(j, "overrides", ov);
	return j;
}
