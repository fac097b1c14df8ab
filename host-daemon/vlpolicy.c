/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The policy a libvirt domain carries in its XML, under freehint's own
 * namespace in <metadata> (docs/libvirt.md): read when the libvirt source
 * (re)reads the domain, and again on libvirt's metadata-change event, so
 * that it moves with the VM when it migrates. policy.c parses it.
 */
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "freehintd.h"
#include "libvirt.h"

static void vlp_changed(virConnectPtr, virDomainPtr, int, const char *, void *);

/* The domain's <freehint:policy>, into its VM (when it has one). */
void
vlp_read(virDomainPtr dom)
{
	struct vm *vm;
	char *xml;

	if ((vm = vm_find(virDomainGetName(dom))) == NULL)
		return;
	/* None: VIR_ERR_NO_DOMAIN_METADATA, and the VM has no keys of it. */
	xml = virDomainGetMetadata(
	    dom, VIR_DOMAIN_METADATA_ELEMENT, FREEHINT_XMLNS, 0);
	if (xml == NULL && virGetLastErrorCode() != VIR_ERR_NO_DOMAIN_METADATA)
		return;
	vm_policy_metadata(vm, xml);
	free(xml);
}

static void
vlp_changed(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri,
    void *arg)
{
	if (type == VIR_DOMAIN_METADATA_ELEMENT && nsuri != NULL &&
	    strcmp(nsuri, FREEHINT_XMLNS) == 0)
		vlp_read(dom);
}

/* The metadata-change event's callback id, or -1. */
int
vlp_register(virConnectPtr conn)
{
	return virConnectDomainEventRegisterAny(conn, NULL,
	    VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
	    VIR_DOMAIN_EVENT_CALLBACK(vlp_changed), NULL, NULL);
}
