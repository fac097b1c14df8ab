# freehint: top-level build (GNU make + pkg-config).
#
#   make               build the userspace programs into $(O)/
#   make kmod          build freehint.ko against the installed kernel headers
#   make check         install test dependencies, build, run every test
#   make bench         run the benchmarks
#   make demo          boot the built-in guest and show freehint at work
#   make install DESTDIR=...   (make uninstall removes what it installed)
#   make deb           Debian packages into build/deb/ (debian/)
#
# PREFIX, SYSCONFDIR, UNITDIR, CPPFLAGS, CFLAGS and LDFLAGS are honoured
# (debian/rules passes dpkg-buildflags through them). WITH_LIBVIRT=no builds
# freehintd without the libvirt source; the default is yes when pkg-config
# finds libvirt.
#
# SAN=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer into
# build-san/ so that both builds can live side by side.

SAN ?= 0
ifeq ($(SAN),1)
O ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
else
O ?= build
SANFLAGS =
endif

CC ?= cc
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/freehint
SYSCONFDIR ?= /etc
UNITDIR ?= $(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir \
	systemd 2>/dev/null),/lib/systemd/system)
SYSUSERSDIR ?= $(or $(shell $(PKG_CONFIG) --variable=sysusersdir \
	systemd 2>/dev/null),/usr/lib/sysusers.d)
# The one place the version is written: debian/changelog (upstream part).
VERSION := $(shell head -n 1 debian/changelog | cut -d ' ' -f 2 | \
	tr -d '()' | sed 's/-[^-]*$$//')

WARN = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wcast-qual -Wundef \
	-Wno-unused-parameter
CFLAGS ?= -O2 -g
WITH_LIBVIRT ?= $(shell $(PKG_CONFIG) --exists libvirt libvirt-qemu \
	2>/dev/null && echo yes || echo no)
ifeq ($(WITH_LIBVIRT),yes)
VIRT_PKGS := libvirt libvirt-qemu
endif
DEP_PKGS := libevent libprotobuf-c libsystemd json-c $(VIRT_PKGS)
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEP_PKGS) 2>/dev/null)
ALL_CFLAGS = -std=gnu11 $(WARN) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) \
	-D_GNU_SOURCE -DFREEHINT_VERSION='"$(VERSION)"' \
	-DFH_SYSCONFDIR='"$(SYSCONFDIR)"' -Iinclude -I$(O)/proto -Iproto \
	-Ilib $(DEP_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

EVENT_LIBS := $(shell $(PKG_CONFIG) --libs libevent 2>/dev/null)
PROTOBUF_LIBS := $(shell $(PKG_CONFIG) --libs libprotobuf-c 2>/dev/null)
SYSTEMD_LIBS := $(shell $(PKG_CONFIG) --libs libsystemd 2>/dev/null)
ifeq ($(WITH_LIBVIRT),yes)
VIRT_LIBS := $(shell $(PKG_CONFIG) --libs $(VIRT_PKGS) 2>/dev/null)
endif
# libxml2: libvirt domain XML and the policy in its metadata (policy.c).
XML_CFLAGS := $(shell $(PKG_CONFIG) --cflags libxml-2.0 2>/dev/null)
XML_LIBS := $(shell $(PKG_CONFIG) --libs libxml-2.0 2>/dev/null)

PROGRAMS :=
INSTALL_TARGETS :=
# Every installed file, relative to DESTDIR, for make uninstall.
INSTALLED_FILES :=
LIBFREEHINT := $(O)/libfreehint.a

.PHONY: all kmod check bench demo install install-dirs uninstall deb version FORCE \
	clean distclean deps format format-check
all:

include proto/module.mk
include lib/module.mk
include guest-agent/module.mk
include host-daemon/module.mk
include kmod/module.mk
include tests/module.mk
include bench/module.mk

all: $(PROGRAMS)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

deps:
	scripts/install-deps.sh all

# Each module.mk adds its own install-* target to INSTALL_TARGETS and the
# files it installs to INSTALLED_FILES.
INSTALLED_FILES += $(DOCDIR)/README.md $(addprefix $(DOCDIR)/,\
	$(notdir $(wildcard docs/*.md)))
install: all install-dirs $(INSTALL_TARGETS)
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

install-dirs:
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/freehint

# Man pages carry the version as @VERSION@.
$(DESTDIR)$(MANDIR)/man5/% $(DESTDIR)$(MANDIR)/man8/%: man/% FORCE
	@mkdir -p $(dir $@)
	sed 's/@VERSION@/$(VERSION)/g' $< >$@
	chmod 0644 $@
FORCE:

# Configuration a user may have edited (agent.conf, libvirt-hook.conf) is
# not in INSTALLED_FILES and stays.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED_FILES))
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DKMS_SRCDIR) \
		$(DESTDIR)$(SYSCONFDIR)/freehint 2>/dev/null

# Three packages from debian/ (freehint-agent, freehintd, freehint-dkms),
# built from a copy of the tracked tree under build/deb/, then lintian.
deb:
	scripts/build-deb.sh

# The version, for scripts and tests.
version:
	@echo $(VERSION)

FORMAT_SRCS = $(shell find proto lib guest-agent host-daemon tests bench \
	-name '*.[ch]' -not -name '*.pb-c.*' 2>/dev/null)

format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf build build-san build-werror check-logs
	$(MAKE) -C kmod clean 2>/dev/null || true

distclean: clean

-include $(shell find $(O) -name '*.d' -type f 2>/dev/null)
