/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The sources' calls (vmsource.h), sent where the registry is: in this
 * process (vm.c), or in the worker, from the privileged parent
 * (ps_parent.c sets vm_sink).
 */
#include "freehintd.h"

const struct vm_sink *vm_sink = &vm_registry;

int
vm_source_add(const struct vm_desc *d, vm_hmp_fn hmp, void *ctx)
{
	return vm_sink->add(d, hmp, ctx);
}

void
vm_source_remove(const char *name)
{
	vm_sink->remove(name);
}

void
vm_source_migration(const char *name, enum vm_migration_event ev)
{
	vm_sink->migration(name, ev);
}

void
vm_source_dma(const char *name, const char *why)
{
	vm_sink->dma(name, why);
}

void
vm_source_policy(const char *name, const char *xml)
{
	vm_sink->policy(name, xml);
}

void
vm_source_speed(const char *name, vm_speed_fn fn, void *ctx)
{
	vm_sink->speed(name, fn, ctx);
}

void
vm_source_running(const char *name, bool running)
{
	vm_sink->running(name, running);
}

void
vm_source_changed(const char *name)
{
	vm_sink->changed(name);
}
