# freehint: top-level build (GNU make + pkg-config).
#
#   make               build the userspace programs into $(O)/
#   make kmod          build freehint.ko against the installed kernel headers
#   make check         install test dependencies, build, run every test
#   make bench         run the benchmarks
#   make demo          boot the built-in guest and show freehint at work
#   make install DESTDIR=...
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
UNITDIR ?= /lib/systemd/system
VERSION := 0.1.0

WARN = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wcast-qual -Wundef \
	-Wno-unused-parameter
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE \
	-DFREEHINT_VERSION='"$(VERSION)"' -Iinclude -I$(O)/proto -Iproto -Ilib
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

EVENT_LIBS := $(shell $(PKG_CONFIG) --libs libevent 2>/dev/null)
PROTOBUF_LIBS := $(shell $(PKG_CONFIG) --libs libprotobuf-c 2>/dev/null)
SYSTEMD_LIBS := $(shell $(PKG_CONFIG) --libs libsystemd 2>/dev/null)
VIRT_LIBS := $(shell $(PKG_CONFIG) --libs libvirt libvirt-qemu 2>/dev/null)
XML_CFLAGS := $(shell $(PKG_CONFIG) --cflags libxml-2.0 2>/dev/null)
XML_LIBS := $(shell $(PKG_CONFIG) --libs libxml-2.0 2>/dev/null)

PROGRAMS :=
INSTALL_TARGETS :=
LIBFREEHINT := $(O)/libfreehint.a

.PHONY: all kmod check bench demo install install-dirs clean distclean \
	deps format format-check
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

# Each module.mk adds its own install-* target to INSTALL_TARGETS.
install: all install-dirs $(INSTALL_TARGETS)
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

install-dirs:
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/freehint

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

-include $(shell find $(O) -name '*.d' 2>/dev/null)
