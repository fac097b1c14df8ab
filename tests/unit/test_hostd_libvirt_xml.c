/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libvirt_xml.c's domain XML reader: what virsh dumpxml printed for real
 * domains (tests/libvirt/data/, captured from libvirt 9.0), then odd and
 * hostile XML: missing attributes, entities, comments, very long values,
 * deep nesting, truncated documents, devices written into metadata,
 * several freehint channels, devices that DMA into guest memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "common.h"
#include "freehintd.h"
#include "libvirt.h"

#define DATA_DIR "tests/libvirt/data/"

/* main.c's globals: libvirt.o links the registry, never run here. */
struct config *conf;
struct event_base *ev_base;

static char *load(const char *);
static char *wrap(const char *, const char *);
static int parse(const char *, struct vl_xml *);
struct dev_case;
static const char *pick_channel(const struct vl_xml *);
static const char *pick_dma(const struct vl_xml *);
static void dev_cases(const struct dev_case *, size_t, const char *,
    const char *(*)(const struct vl_xml *), bool);

/* The whole file, NUL-terminated; run from the top of the tree. */
static char *
load(const char *name)
{
	char path[256], *buf;
	long n;
	FILE *f;

	snprintf(path, sizeof path, DATA_DIR "%s", name);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg(
		    "%s: cannot open (run from the top of the tree)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A domain with memory backing mb and devices dev. */
static char *
wrap(const char *mb, const char *dev)
{
	char *s;

	xasprintf(&s,
	    "<?xml version='1.0'?>\n<domain type='qemu'><name>x</name>%s"
	    "<devices>%s</devices></domain>\n",
	    mb, dev);
	return s;
}

static int
parse(const char *xml, struct vl_xml *x)
{
	return vl_xml_parse(xml, x);
}

/* Devices, and what the reader must take from them (NULL: nothing). */
struct dev_case {
	const char *dev;
	const char *want;
};

static const char *
pick_channel(const struct vl_xml *x)
{
	return x->channel;
}

static const char *
pick_dma(const struct vl_xml *x)
{
	return x->dma;
}

/* Each case's devices in a domain: pick() of what is read is want
 * (contains it, with part). */
static void
dev_cases(const struct dev_case *cases, size_t n, const char *what,
    const char *(*pick)(const struct vl_xml *), bool part)
{
	const char *got, *want;
	struct vl_xml x;
	char *xml;
	size_t i;

	for (i = 0; i < n; i++) {
		xml = wrap("", cases[i].dev);
		if (parse(xml, &x) != 0)
			fail_msg("case %zu: parse failed", i);
		got = pick(&x);
		want = cases[i].want;
		if (want == NULL ? got != NULL
		                 : got == NULL ||
		            (part ? strstr(got, want) == NULL
		                  : strcmp(got, want) != 0))
			fail_msg("case %zu: %s %s, want %s", i, what,
			    got != NULL ? got : "none",
			    want != NULL ? want : "none");
		vl_xml_free(&x);
		free(xml);
	}
}

static void
test_real_memfd_channel(void **state)
{
	struct vl_xml x;
	char *xml = load("memfd-channel.xml"), *why;

	assert_int_equal(parse(xml, &x), 0);
	assert_int_equal(x.backing, VM_BACKING_MEMFD);
	assert_int_equal(x.access, 1);
	assert_true(x.have_source);
	assert_false(x.hugepages);
	assert_int_equal(x.cid, 0);
	assert_false(x.poison);
	assert_non_null(x.channel);
	assert_string_equal(x.channel, "/var/lib/libvirt/fh/fh-memfd.chan");
	assert_null(vl_unservable(&x, 1234));
	why = vl_unservable(&x, 0);
	assert_string_equal(why, "QEMU process not found");
	free(why);
	vl_xml_free(&x);
	free(xml);
}

static void
test_real_private_nochannel(void **state)
{
	struct vl_xml x;
	char *xml = load("private-nochannel.xml"), *why;

	assert_int_equal(parse(xml, &x), 0);
	assert_int_equal(x.backing, VM_BACKING_UNKNOWN);
	assert_int_equal(x.access, 0);
	assert_null(x.channel);
	assert_int_equal(x.cid, 0);
	why = vl_unservable(&x, 1234);
	assert_non_null(why);
	assert_non_null(strstr(why,
	    "guest memory is private: add <memoryBacking><source "
	    "type='memfd'/><access mode='shared'/></memoryBacking>"));
	assert_non_null(strstr(why,
	    "no freehint channel: add <channel "
	    "type='unix'><source mode='bind'/>"));
	assert_non_null(strstr(why, "name='org.freehint.agent.0'"));
	assert_null(strstr(why, "poison"));
	free(why);
	vl_xml_free(&x);
	free(xml);
}

/*
 * vsock CID 42, a file backing shared per NUMA cell, page_poison=1 on the
 * command line; the freehint channel connects out instead of binding (not
 * one freehintd can reach) and another channel binds under another name.
 */
static void
test_real_vsock_file_numa(void **state)
{
	struct vl_xml x;
	char *xml = load("vsock-file-numa.xml"), *why;

	assert_int_equal(parse(xml, &x), 0);
	assert_int_equal(x.cid, 42);
	assert_int_equal(x.backing, VM_BACKING_FILE);
	assert_int_equal(x.access, 1);
	assert_int_equal(x.numa_shared, 2);
	assert_int_equal(x.numa_other, 0);
	assert_true(x.poison);
	assert_null(x.channel);
	why = vl_unservable(&x, 1234);
	assert_non_null(why);
	assert_non_null(strstr(why, "page_poison=1"));
	assert_null(strstr(why, "private"));
	assert_null(strstr(why, "no freehint channel")); /* vsock serves */
	free(why);
	vl_xml_free(&x);
	free(xml);
}

static void
test_real_hugepages(void **state)
{
	struct vl_xml x;
	char *xml = load("hugepages.xml"), *why;

	assert_int_equal(parse(xml, &x), 0);
	assert_true(x.hugepages);
	assert_int_equal(x.backing, VM_BACKING_HUGETLBFS);
	assert_int_equal(x.access, 0);
	/* hugetlbfs is private unless access says shared. */
	why = vl_unservable(&x, 1234);
	assert_non_null(strstr(why, "guest memory is private"));
	free(why);
	vl_xml_free(&x);
	free(xml);
}

/* Each memoryBacking variant and what it means for sharing. */
static void
test_backing_variants(void **state)
{
	static const struct {
		const char *mb;
		enum vm_backing_kind kind;
		int access;
		bool served;
	} cases[] = {
		{ "", VM_BACKING_UNKNOWN, 0, false },
		{ "<memoryBacking><source type='memfd'/></memoryBacking>",
		    VM_BACKING_MEMFD, 0, true },
		{ "<memoryBacking><source type='memfd'/><access "
		  "mode='private'/></memoryBacking>",
		    VM_BACKING_MEMFD, -1, false },
		{ "<memoryBacking><source type='file'/></memoryBacking>",
		    VM_BACKING_FILE, 0, false },
		{ "<memoryBacking><source type=\"file\"/><access "
		  "mode=\"shared\"/></memoryBacking>",
		    VM_BACKING_FILE, 1, true },
		{ "<memoryBacking><source type='anonymous'/><access "
		  "mode='shared'/></memoryBacking>",
		    VM_BACKING_ANONYMOUS, 1, false },
		{ "<memoryBacking><hugepages><page size='2048' "
		  "unit='KiB'/></hugepages><access "
		  "mode='shared'/></memoryBacking>",
		    VM_BACKING_HUGETLBFS, 1, true },
		{ "<memoryBacking><source type='elsewhere'/></memoryBacking>",
		    VM_BACKING_UNKNOWN, 0, false },
		/* memoryBacking only counts directly under domain. */
		{ "<metadata><memoryBacking><source type='memfd'/><access "
		  "mode='shared'/></memoryBacking></metadata>",
		    VM_BACKING_UNKNOWN, 0, false },
	};
	struct vl_xml x;
	char *xml, *why;
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(cases); i++) {
		xml = wrap(cases[i].mb,
		    "<vsock model='virtio'><cid address='7'/></vsock>");
		assert_int_equal(parse(xml, &x), 0);
		assert_int_equal(x.backing, cases[i].kind);
		assert_int_equal(x.access, cases[i].access);
		assert_int_equal(x.cid, 7);
		why = vl_unservable(&x, 1);
		if (cases[i].served != (why == NULL))
			fail_msg("case %zu: %s", i, why ? why : "served");
		free(why);
		vl_xml_free(&x);
		free(xml);
	}
}

/* Channels freehintd cannot use are not taken for the freehint one. */
static void
test_channel_variants(void **state)
{
	static const struct dev_case cases[] = {
		{ "<channel type='unix'><source mode='bind' path='/a'/><target "
		  "type='virtio' name='org.freehint.agent.0'/></channel>",
		    "/a" },
		/* no path, no mode, other name, other type, other target */
		{ "<channel type='unix'><source mode='bind'/><target "
		  "type='virtio' name='org.freehint.agent.0'/></channel>",
		    NULL },
		{ "<channel type='unix'><source path='/a'/><target "
		  "type='virtio' name='org.freehint.agent.0'/></channel>",
		    NULL },
		{ "<channel type='unix'><source mode='bind' path='/a'/><target "
		  "type='virtio' name='org.freehint.agent.1'/></channel>",
		    NULL },
		{ "<channel type='pty'><source mode='bind' path='/a'/><target "
		  "type='virtio' name='org.freehint.agent.0'/></channel>",
		    NULL },
		{ "<channel type='unix'><source mode='bind' path='/a'/><target "
		  "type='guestfwd' name='org.freehint.agent.0'/></channel>",
		    NULL },
		{ "<channel type='unix'><source mode='bind' path='/a'/><target "
		  "type='virtio'/></channel>",
		    NULL },
		{ "<channel><source mode='bind' path='/a'/><target "
		  "type='virtio' name='org.freehint.agent.0'/></channel>",
		    NULL },
		/* other channels do not count; target before source is fine */
		{ "<channel type='unix'><source mode='bind' path='/x'/><target "
		  "type='virtio' name='other'/></channel><channel "
		  "type='unix'><target type='virtio' "
		  "name='org.freehint.agent.0'/><source mode='bind' "
		  "path='/b'/></channel>",
		    "/b" },
		/* two freehint channels: neither is taken, not the first */
		{ "<channel type='unix'><target type='virtio' "
		  "name='org.freehint.agent.0'/><source mode='bind' "
		  "path='/b'/></channel><channel type='unix'><source "
		  "mode='bind' path='/c'/><target type='virtio' "
		  "name='org.freehint.agent.0'/></channel>",
		    NULL },
		/* an unusable one beside a usable one: ambiguous too */
		{ "<channel type='pty'><target type='virtio' "
		  "name='org.freehint.agent.0'/></channel><channel "
		  "type='unix'><source mode='bind' path='/c'/><target "
		  "type='virtio' name='org.freehint.agent.0'/></channel>",
		    NULL },
		/* two sources in one channel: none */
		{ "<channel type='unix'><source mode='bind' path='/a'/><source "
		  "mode='bind' path='/b'/><target type='virtio' "
		  "name='org.freehint.agent.0'/></channel>",
		    NULL },
		/* entities and character references are decoded */
		{ "<channel type=\"unix\"><source mode=\"bind\" "
		  "path=\"/r&amp;d/&#x61;&#98;&lt;&gt;&quot;&apos;\"/><target "
		  "type='virtio' name='org.freehint&#46;agent.0'/></channel>",
		    "/r&d/ab<>\"'" },
		/* a '>' in a quoted value does not end the tag */
		{ "<channel type='unix'><source mode='bind' path='/a>b'/>"
		  "<target type='virtio' name='org.freehint.agent.0'/>"
		  "</channel>",
		    "/a>b" },
		/* comments and processing instructions are skipped */
		{ "<!-- <channel type='unix'><source mode='bind' path='/no'/>"
		  "<target type='virtio' name='org.freehint.agent.0'/>"
		  "</channel> --><?pi x?><channel type='unix'><source "
		  "mode='bind' path='/yes'/><target type='virtio' "
		  "name='org.freehint.agent.0'/></channel>",
		    "/yes" },
	};
	dev_cases(cases, FH_ARRAY_SIZE(cases), "channel", pick_channel, false);
}

static void
test_cid_values(void **state)
{
	static const struct {
		const char *dev;
		uint32_t cid;
	} cases[] = {
		{ "<vsock model='virtio'><cid auto='no' "
		  "address='3'/></vsock>",
		    3 },
		{ "<vsock><cid address='4294967294'/></vsock>", 4294967294U },
		/* reserved, out of range, junk, missing */
		{ "<vsock><cid address='2'/></vsock>", 0 },
		{ "<vsock><cid address='4294967295'/></vsock>", 0 },
		{ "<vsock><cid address='99999999999999999999999'/></vsock>",
		    0 },
		{ "<vsock><cid address='-5'/></vsock>", 0 },
		{ "<vsock><cid address='12abc'/></vsock>", 0 },
		{ "<vsock><cid address=''/></vsock>", 0 },
		{ "<vsock><cid auto='yes'/></vsock>", 0 },
		{ "<cid address='9'/>", 0 },
	};
	struct vl_xml x;
	char *xml;
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(cases); i++) {
		xml = wrap("", cases[i].dev);
		assert_int_equal(parse(xml, &x), 0);
		if (x.cid != cases[i].cid)
			fail_msg("case %zu: cid %u", i, x.cid);
		vl_xml_free(&x);
		free(xml);
	}
}

/* A value longer than the reader's buffers is dropped, never cut. */
static void
test_long_values(void **state)
{
	struct vl_xml x;
	size_t n = 64 * 1024;
	char *path, *xml, *dev;

	path = xmalloc(n + 1);
	memset(path, 'a', n);
	path[0] = '/';
	path[n] = '\0';
	xasprintf(&dev,
	    "<channel type='unix'><source mode='bind' path='%s'/><target "
	    "type='virtio' name='org.freehint.agent.0'/></channel><vsock>"
	    "<cid address='%s'/></vsock>",
	    path, path + 1);
	xml = wrap("", dev);
	assert_int_equal(parse(xml, &x), 0);
	assert_null(x.channel);
	assert_int_equal(x.cid, 0);
	vl_xml_free(&x);
	free(xml);
	free(dev);
	free(path);
}

/* Long element names at every depth, deeper than the reader's stack. */
static void
test_deep_long_names(void **state)
{
	char *xml, *p, name[300];
	struct vl_xml x;
	size_t depth = 40, i, cap = depth * 2 * (sizeof name + 4) + 256;

	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	xml = p = xmalloc(cap);
	p += sprintf(p, "<domain>");
	for (i = 0; i < depth; i++)
		p += sprintf(p, "<%s%zu a='1'>", name + i % 200, i);
	p += sprintf(p, "<vsock><cid address='5'/></vsock>");
	for (i = depth; i-- > 0;)
		p += sprintf(p, "</%s%zu>", name + i % 200, i);
	p += sprintf(p,
	    "<devices><vsock><cid address='6'/></vsock></devices>"
	    "</domain>");
	assert_true((size_t)(p - xml) < cap);
	assert_int_equal(parse(xml, &x), 0);
	assert_int_equal(x.cid, 6);
	vl_xml_free(&x);
	free(xml);
}

/* Broken documents: -1, and never a read past the end. */
static void
test_malformed(void **state)
{
	static const char *cases[] = {
		"<domain><devices>",
		"<domain></devices></domain></domain>",
		"<domain><!-- never closed",
		"<domain><?pi",
		"<domain><devices><channel type='unix",
		"<domain><devices><channel type='unix'><source mode='bind' "
		"path='/a'/><target type='virtio' name='org.freehint.agent.0'/"
		"></channel></devices",
		"<domain>< x/></domain>",
		"<domain><></domain>",
		"<",
		"",
		/* unknown entities and bad references */
		"<domain><devices><channel type='unix'><source mode='bind' "
		"path='/&bogus;'/><target type='virtio' "
		"name='org.freehint.agent.0'/></channel></devices></domain>",
		"<domain><os><cmdline>&#0;</cmdline></os></domain>",
		"<domain><os><cmdline>&#1114112;</cmdline></os></domain>",
		/* attributes without values or quotes */
		"<domain><devices><vsock><cid address/></vsock></devices>"
		"</domain>",
		"<domain><devices><vsock><cid address=7/></vsock></devices>"
		"</domain>",
		/* closing tags that do not match */
		"<domain><devices></channel></devices></domain>",
		/* an entity of the document's own: no expansion, no DTD */
		"<!DOCTYPE domain [<!ENTITY p SYSTEM 'file:///etc/passwd'>]>"
		"<domain><os><cmdline>&p;</cmdline></os></domain>",
		/* not a domain */
		"<node><devices/></node>",
	};
	struct vl_xml x;
	size_t i, n;
	char *copy;

	for (i = 0; i < FH_ARRAY_SIZE(cases); i++) {
		/* An exact-size copy, so that ASan sees any overread. */
		n = strlen(cases[i]) + 1;
		copy = xmalloc(n);
		memcpy(copy, cases[i], n);
		if (parse(copy, &x) != -1)
			fail_msg("case %zu accepted", i);
		vl_xml_free(&x);
		free(copy);
	}
	/* Spaces around '=' are allowed. */
	copy = wrap("", "<vsock><cid address = \"8\"/></vsock>");
	assert_int_equal(parse(copy, &x), 0);
	assert_int_equal(x.cid, 8);
	vl_xml_free(&x);
	free(copy);
}

/*
 * What the domain's owner writes in <metadata> (or a guest agent that
 * sets it) is text: a CDATA section, a processing instruction or
 * elements there never become a device. The hand-written reader skipped
 * "<![CDATA[" and "<?" to the first '>' and took the channel inside for
 * the domain's.
 */
static void
test_metadata_injection(void **state)
{
	static const char *meta[] = {
		"<metadata><app:x xmlns:app='urn:x'><![CDATA[></app:x>"
		"</metadata>"
		"<devices><channel type='unix'><source mode='bind' "
		"path='/evil'/><target type='virtio' "
		"name='org.freehint.agent.0'/></channel><hostdev/></devices>"
		"<metadata><app:x>]]></app:x></metadata>",
		"<metadata><app:x xmlns:app='urn:x'><?pi ></app:x></metadata>"
		"<devices><channel type='unix'><source mode='bind' "
		"path='/evil'/><target type='virtio' "
		"name='org.freehint.agent.0'/></channel></devices>"
		"<metadata><app:x> ?></app:x></metadata>",
		"<metadata><app:x xmlns:app='urn:x'><devices><channel "
		"type='unix'><source mode='bind' path='/evil'/><target "
		"type='virtio' name='org.freehint.agent.0'/></channel>"
		"<vsock><cid address='9'/></vsock><hostdev/></devices>"
		"</app:x></metadata>",
	};
	struct vl_xml x;
	char *xml;
	size_t i;

	for (i = 0; i < FH_ARRAY_SIZE(meta); i++) {
		xml = wrap(meta[i],
		    "<channel type='unix'><source mode='bind' path='/good'/>"
		    "<target type='virtio' name='org.freehint.agent.0'/>"
		    "</channel>");
		if (parse(xml, &x) != 0)
			fail_msg("case %zu: parse failed", i);
		if (x.channel == NULL || strcmp(x.channel, "/good") != 0)
			fail_msg("case %zu: channel %s, want /good", i,
			    x.channel != NULL ? x.channel : "none");
		if (x.cid != 0 || x.channels != 1 || x.dma != NULL)
			fail_msg("case %zu: cid %u, %u channels, dma %s", i,
			    x.cid, x.channels, x.dma != NULL ? x.dma : "-");
		vl_xml_free(&x);
		free(xml);
	}
}

/* Two freehint channels: status says so rather than guess. */
static void
test_several_channels(void **state)
{
	struct vl_xml x;
	char *xml, *why;

	xml = wrap("<memoryBacking><source type='memfd'/></memoryBacking>",
	    "<channel type='unix'><source mode='bind' path='/a'/><target "
	    "type='virtio' name='org.freehint.agent.0'/></channel><channel "
	    "type='unix'><source mode='bind' path='/b'/><target "
	    "type='virtio' name='org.freehint.agent.0'/></channel>");
	assert_int_equal(parse(xml, &x), 0);
	assert_null(x.channel);
	assert_int_equal(x.channels, 2);
	why = vl_unservable(&x, 1);
	assert_non_null(why);
	assert_string_equal(
	    why, "several channels named 'org.freehint.agent.0': keep one");
	free(why);
	vl_xml_free(&x);
	free(xml);
}

/* Devices that DMA into guest memory are found, and only in <devices>. */
static void
test_dma_devices(void **state)
{
	static const struct dev_case cases[] = {
		{ "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
		  "<address domain='0x0000' bus='0x06' slot='0x02' "
		  "function='0x0'/></source></hostdev>",
		    "<hostdev>" },
		{ "<hostdev mode='subsystem' type='mdev' model='vfio-pci'>"
		  "<source><address uuid='c2177883-f1bb-47f0-914d-"
		  "32a22e3a8804'/></source></hostdev>",
		    "<hostdev>" },
		{ "<interface type='hostdev' managed='yes'><source><address "
		  "type='pci' domain='0' bus='0' slot='7' function='0'/>"
		  "</source></interface>",
		    "<interface type='hostdev'>" },
		{ "<interface type='vdpa'><source "
		  "dev='/dev/vhost-vdpa-0'/></interface>",
		    "vDPA interface" },
		{ "<disk type='vhostvdpa' device='disk'><source "
		  "dev='/dev/vhost-vdpa-0'/><target dev='vda'/></disk>",
		    "vDPA disk" },
		{ "<interface type='network'><source network='default'/>"
		  "</interface><disk type='file'><source file='/a'/><target "
		  "dev='vda'/></disk>",
		    NULL },
	};
	dev_cases(cases, FH_ARRAY_SIZE(cases), "dma", pick_dma, true);
}

/* Every prefix of a real document: no crash, no leak, no overread. */
static void
test_every_prefix(void **state)
{
	struct vl_xml x;
	char *xml = load("memfd-channel.xml"), *copy;
	size_t i, n = strlen(xml);

	for (i = 0; i < n; i += 7) {
		copy = xmalloc(i + 1);
		memcpy(copy, xml, i);
		copy[i] = '\0';
		(void)parse(copy, &x);
		vl_xml_free(&x);
		free(copy);
	}
	free(xml);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_memfd_channel),
		cmocka_unit_test(test_real_private_nochannel),
		cmocka_unit_test(test_real_vsock_file_numa),
		cmocka_unit_test(test_real_hugepages),
		cmocka_unit_test(test_backing_variants),
		cmocka_unit_test(test_channel_variants),
		cmocka_unit_test(test_cid_values),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_deep_long_names),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_metadata_injection),
		cmocka_unit_test(test_several_channels),
		cmocka_unit_test(test_dma_devices),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
