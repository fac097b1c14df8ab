/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The domain XML reader: libxml2 parses the document libvirt gives
 * (no network, no DTD, no entity of its own: a guest's owner writes the
 * metadata), and XPath from /domain picks the few things freehintd needs.
 * Whatever sits in <metadata>, a CDATA section or a comment is text, never
 * a device. Where one element is wanted and several match, none is taken.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "common.h"
#include "libvirt.h"

/* The freehint channel: its target, whatever its type and source. */
#define VL_XP_CHANNEL                                    \
	"/domain/devices/channel[target[@type='virtio' " \
	"and @name='" VL_CHANNEL_NAME "']]"

static xmlXPathObjectPtr vl_xp_eval(xmlXPathContextPtr, const char *);
static int vl_xp_count(xmlXPathContextPtr, const char *);
static char *vl_xp_value(xmlXPathContextPtr, const char *, size_t);
static void vl_xml_read(xmlXPathContextPtr, struct vl_xml *);
static void vl_xml_dma(xmlXPathContextPtr, struct vl_xml *);
static void vl_why(char *, size_t, size_t *, const char *);

/* Devices that DMA into guest RAM, and what status says of them. */
static const struct {
	const char *xpath;
	const char *why;
} vl_dma_devices[] = {
	{ "/domain/devices/hostdev",
	    "a <hostdev> device is assigned to the guest: it DMAs into "
	    "guest memory" },
	{ "/domain/devices/interface[@type='hostdev']",
	    "an <interface type='hostdev'> is assigned to the guest: it "
	    "DMAs into guest memory" },
	{ "/domain/devices/interface[@type='vdpa']",
	    "a vDPA interface DMAs into guest memory" },
	{ "/domain/devices/disk[@type='vhostvdpa']",
	    "a vDPA disk DMAs into guest memory" },
};

static xmlXPathObjectPtr
vl_xp_eval(xmlXPathContextPtr ctx, const char *expr)
{
	xmlXPathObjectPtr o;

	o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	if (o == NULL)
		return NULL;
	if (o->type != XPATH_NODESET || o->nodesetval == NULL) {
		xmlXPathFreeObject(o);
		return NULL;
	}
	return o;
}

static int
vl_xp_count(xmlXPathContextPtr ctx, const char *expr)
{
	xmlXPathObjectPtr o;
	int n;

	if ((o = vl_xp_eval(ctx, expr)) == NULL)
		return 0;
	n = o->nodesetval->nodeNr;
	xmlXPathFreeObject(o);
	return n;
}

/*
 * The text of the one node expr selects (an attribute's value), shorter
 * than max; NULL when none, several, or too long (a value cut short would
 * be another value).
 */
static char *
vl_xp_value(xmlXPathContextPtr ctx, const char *expr, size_t max)
{
	xmlXPathObjectPtr o;
	xmlChar *v;
	char *s = NULL;

	if ((o = vl_xp_eval(ctx, expr)) == NULL)
		return NULL;
	if (o->nodesetval->nodeNr == 1 &&
	    (v = xmlNodeGetContent(o->nodesetval->nodeTab[0])) != NULL) {
		if (strlen((char *)v) < max)
			s = xstrdup((char *)v);
		xmlFree(v);
	}
	xmlXPathFreeObject(o);
	return s;
}

int
vl_xml_parse(const char *xml, struct vl_xml *x)
{
	xmlXPathContextPtr ctx;
	xmlDocPtr doc;
	xmlNodePtr root;
	size_t len = strlen(xml);

	memset(x, 0, sizeof *x);
	if (len == 0 || len > INT_MAX)
		return -1;
	xmlInitParser();
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL)
		return -1;
	/* libvirt never writes a DTD: one is someone else's document. */
	if (doc->intSubset != NULL || doc->extSubset != NULL ||
	    (root = xmlDocGetRootElement(doc)) == NULL ||
	    xmlStrcmp(root->name, (const xmlChar *)"domain") != 0 ||
	    (ctx = xmlXPathNewContext(doc)) == NULL) {
		xmlFreeDoc(doc);
		return -1;
	}
	vl_xml_read(ctx, x);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return 0;
}

static void
vl_xml_read(xmlXPathContextPtr ctx, struct vl_xml *x)
{
	char *v;
	uint64_t cid;

	x->channels = (unsigned)vl_xp_count(ctx, VL_XP_CHANNEL);
	if (x->channels == 1)
		x->channel = vl_xp_value(ctx,
		    VL_XP_CHANNEL "[@type='unix']/source[@mode='bind']/@path",
		    PATH_MAX);
	if ((v = vl_xp_value(ctx, "/domain/devices/vsock/cid/@address", 16)) !=
	        NULL &&
	    fh_parse_u64(v, 3, UINT32_MAX - 1, &cid) == 0)
		x->cid = (uint32_t)cid;
	free(v);

	if ((v = vl_xp_value(ctx, "/domain/memoryBacking/source/@type", 64)) !=
	    NULL) {
		x->have_source = true;
		if (strcmp(v, "memfd") == 0)
			x->backing = VM_BACKING_MEMFD;
		else if (strcmp(v, "file") == 0)
			x->backing = VM_BACKING_FILE;
		else if (strcmp(v, "anonymous") == 0)
			x->backing = VM_BACKING_ANONYMOUS;
		free(v);
	}
	if ((v = vl_xp_value(ctx, "/domain/memoryBacking/access/@mode", 64)) !=
	    NULL) {
		x->access = strcmp(v, "shared") == 0 ? 1 : -1;
		free(v);
	}
	if (vl_xp_count(ctx, "/domain/memoryBacking/hugepages") > 0) {
		x->hugepages = true;
		if (x->backing == VM_BACKING_UNKNOWN)
			x->backing = VM_BACKING_HUGETLBFS;
	}
	x->numa_shared = (unsigned)vl_xp_count(
	    ctx, "/domain/cpu/numa/cell[@memAccess='shared']");
	x->numa_other = (unsigned)vl_xp_count(ctx, "/domain/cpu/numa/cell") -
	    x->numa_shared;
	if ((v = vl_xp_value(ctx, "/domain/os/cmdline", 64 * 1024)) != NULL) {
		x->poison = strstr(v, "page_poison=1") != NULL ||
		    strstr(v, "page_poison=on") != NULL;
		free(v);
	}
	vl_xml_dma(ctx, x);
}

static void
vl_xml_dma(xmlXPathContextPtr ctx, struct vl_xml *x)
{
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(vl_dma_devices); i++) {
		if (vl_xp_count(ctx, vl_dma_devices[i].xpath) > 0) {
			x->dma = xstrdup(vl_dma_devices[i].why);
			return;
		}
	}
}

void
vl_xml_free(struct vl_xml *x)
{
	free(x->channel);
	free(x->dma);
	x->channel = x->dma = NULL;
}

/*
 * Shared memory: said by <access mode='shared'/>, implied by a memfd
 * source, or by memAccess='shared' on every NUMA cell.
 */
bool
vl_xml_shared(const struct vl_xml *x)
{
	return x->access > 0 ||
	    (x->access == 0 && x->backing == VM_BACKING_MEMFD) ||
	    (x->numa_shared > 0 && x->numa_other == 0);
}

char *
vl_unservable(const struct vl_xml *x, pid_t pid)
{
	char buf[1024];
	size_t o = 0;

	buf[0] = '\0';
	if (!vl_xml_shared(x) || x->backing == VM_BACKING_ANONYMOUS)
		vl_why(buf, sizeof buf, &o,
		    "guest memory is private: add <memoryBacking><source "
		    "type='memfd'/><access mode='shared'/></memoryBacking>");
	if (x->channels > 1 && x->cid == 0)
		vl_why(buf, sizeof buf, &o,
		    "several channels named '" VL_CHANNEL_NAME "': keep one");
	else if (x->channel == NULL && x->cid == 0)
		vl_why(buf, sizeof buf, &o,
		    "no freehint channel: add <channel type='unix'><source "
		    "mode='bind'/><target type='virtio' "
		    "name='" VL_CHANNEL_NAME "'/></channel> (or <vsock "
		    "model='virtio'><cid auto='yes'/></vsock>) to <devices>");
	if (x->poison)
		vl_why(buf, sizeof buf, &o,
		    "the guest kernel poisons free pages (page_poison=1): "
		    "remove it from the kernel command line");
	if (pid == 0)
		vl_why(buf, sizeof buf, &o, "QEMU process not found");
	return o > 0 ? xstrdup(buf) : NULL;
}

static void
vl_why(char *buf, size_t len, size_t *o, const char *s)
{
	int n;

	if (*o >= len)
		return;
	n = snprintf(buf + *o, len - *o, "%s%s", *o > 0 ? "; " : "", s);
	if (n > 0)
		*o += (size_t)n;
	if (*o >= len)
		*o = len - 1;
}
