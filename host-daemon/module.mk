# host-daemon: freehintd and freehintctl.
#
# HOSTD_LIB is the daemon's objects without main.o, for the unit tests
# (tests/unit/test_hostd_*.c); HOSTD_LIBS its extra link flags.
JSONC_LIBS := $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null)
HOSTD_SRCS := host-daemon/memmap.c host-daemon/discard.c host-daemon/punch.c \
	host-daemon/validate.c host-daemon/vm.c host-daemon/vm_map.c \
	host-daemon/qmp.c \
	host-daemon/qmpc.c host-daemon/mighold.c host-daemon/passcost.c \
	host-daemon/guest.c host-daemon/listen.c host-daemon/control.c \
	host-daemon/policy.c host-daemon/metrics.c host-daemon/vmsource.c \
	host-daemon/priv.c host-daemon/psmsg.c host-daemon/privsep.c \
	host-daemon/ps_parent.c host-daemon/ps_worker.c
# The libvirt source (host-daemon/libvirt.h lists its files), unless built
# WITH_LIBVIRT=no (Makefile); it reads domain XML with libxml2 and calls
# libvirt from threads of its own.
ifeq ($(WITH_LIBVIRT),yes)
HOSTD_SRCS += host-daemon/libvirt.c host-daemon/libvirt_loop.c \
	host-daemon/libvirt_event.c host-daemon/libvirt_dom.c \
	host-daemon/libvirt_qemu.c host-daemon/libvirt_notify.c host-daemon/libvirt_xml.c
HOSTD_CFLAGS := -DHAVE_LIBVIRT $(XML_CFLAGS)
endif
HOSTD_OBJS := $(HOSTD_SRCS:%.c=$(O)/%.o)
HOSTD_LIB := $(O)/host-daemon/libhostd.a
HOSTD_LIBS := $(EVENT_LIBS) $(PROTOBUF_LIBS) $(SYSTEMD_LIBS) $(VIRT_LIBS) \
	$(XML_LIBS) $(JSONC_LIBS) -pthread

$(HOSTD_OBJS) $(O)/host-daemon/main.o $(O)/host-daemon/freehintctl.o: \
	$(O)/proto/freehint.pb-c.h
$(HOSTD_OBJS) $(O)/host-daemon/main.o: ALL_CFLAGS += $(HOSTD_CFLAGS)
$(O)/host-daemon/policy.o $(O)/tests/unit/test_hostd_policy.o: \
	ALL_CFLAGS += $(XML_CFLAGS)

$(HOSTD_LIB): $(HOSTD_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/freehintd: $(O)/host-daemon/main.o $(HOSTD_LIB) $(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(HOSTD_LIB) $(LIBFREEHINT) $(HOSTD_LIBS)

$(O)/freehintctl: $(O)/host-daemon/freehintctl.o $(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBFREEHINT) $(JSONC_LIBS)
$(O)/tests/hostd/fh-fakeqemu.o: $(O)/proto/freehint.pb-c.h

# The hostile guest of tests/hostd/, built from the project's codec.
$(O)/tests/hostd/fh-hostile: $(O)/tests/hostd/fh-hostile.o $(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBFREEHINT) $(EVENT_LIBS) \
		$(PROTOBUF_LIBS)
$(O)/tests/hostd/fh-hostile.o: $(O)/proto/freehint.pb-c.h
# A fake QEMU: maps a file and says over QMP that it is the guest's RAM.
$(O)/tests/hostd/fh-fakeqemu: $(O)/tests/hostd/fh-fakeqemu.o $(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBFREEHINT) $(JSONC_LIBS)

# A guest's fragmented memory, checked after a migration.
$(O)/tests/hostd/fh-fragsum: $(O)/tests/hostd/fh-fragsum.o
	$(CC) $(ALL_LDFLAGS) -o $@ $<

PROGRAMS += $(O)/freehintd $(O)/freehintctl
INSTALL_TARGETS += install-hostd
.PHONY: install-hostd hostd-tests demo
hostd-tests: $(O)/tests/hostd/fh-hostile $(O)/tests/hostd/fh-fakeqemu \
	$(O)/tests/hostd/fh-fragsum

# The libvirt hook (a conffile in the package) and the control group.
HOOKDIR := $(SYSCONFDIR)/libvirt/hooks/qemu.d
INSTALLED_FILES += $(SBINDIR)/freehintd $(BINDIR)/freehintctl \
	$(UNITDIR)/freehintd.service $(MANDIR)/man8/freehintd.8 \
	$(MANDIR)/man8/freehintctl.8 $(MANDIR)/man5/freehintd.conf.5 \
	$(DOCDIR)/freehintd.conf.example $(HOOKDIR)/freehint \
	$(SYSUSERSDIR)/freehintd.conf
install-hostd: $(O)/freehintd $(O)/freehintctl install-dirs \
		$(addprefix $(DESTDIR)$(MANDIR)/,man8/freehintd.8 \
		man8/freehintctl.8 man5/freehintd.conf.5)
	install -m 0755 $(O)/freehintd $(DESTDIR)$(SBINDIR)/freehintd
	install -m 0755 $(O)/freehintctl $(DESTDIR)$(BINDIR)/freehintctl
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/freehintd.service \
		>$(DESTDIR)$(UNITDIR)/freehintd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/freehintd.service
	install -m 0644 host-daemon/freehintd.conf.example \
		$(DESTDIR)$(DOCDIR)/
	install -D -m 0755 host-daemon/hooks/freehint \
		$(DESTDIR)$(HOOKDIR)/freehint
	install -D -m 0644 systemd/freehintd.sysusers \
		$(DESTDIR)$(SYSUSERSDIR)/freehintd.conf

demo:
	scripts/demo.sh

# Unit tests of the daemon include its header.
$(O)/tests/unit/test_hostd_%.o: ALL_CFLAGS += -Ihost-daemon
