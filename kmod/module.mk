# kmod: freehint.ko, its scribbling test build and the guest test programs.
#
#   make kmod            build kmod/freehint.ko against $(KDIR)
#   make kmod-scribble   same module built with -DFREEHINT_SCRIBBLE into
#                        $(O)/kmod-scribble/ (tests only: scribbles on blocks
#                        as soon as they are read)
#   make kmod-tests      guest-side test programs into $(O)/tests/kmod/
#   make kmod-clean
#   make install-dkms    the module's sources and dkms.conf into
#                        $(DKMS_SRCDIR) (part of make install)
#
# KVER defaults to the kernel under /lib/modules that has a build link (the
# guest kernel), never to the build machine's own `uname -r`.

KVER ?= $(shell for d in /lib/modules/*/build; do [ -e "$$d" ] && \
	basename "$$(dirname "$$d")"; done | sort -V | tail -n 1)
KDIR ?= /lib/modules/$(KVER)/build
KMOD_SRCS := $(wildcard kmod/*.c kmod/*.h) kmod/Kbuild
KMOD_SCRIBBLE_DIR := $(O)/kmod-scribble
KMOD_TEST_PROGS := $(patsubst tests/kmod/%.c,$(O)/tests/kmod/%,\
	$(wildcard tests/kmod/*.c))

.PHONY: kmod kmod-scribble kmod-tests kmod-clean install-dkms

# What DKMS builds from: sources and build files, dkms.conf with the version.
DKMS_SRCDIR ?= /usr/src/freehint-$(VERSION)
DKMS_FILES := $(wildcard kmod/*.c kmod/*.h) kmod/Kbuild kmod/Makefile
INSTALL_TARGETS += install-dkms
INSTALLED_FILES += $(addprefix $(DKMS_SRCDIR)/,$(notdir $(DKMS_FILES)) \
	dkms.conf)

install-dkms:
	install -d $(DESTDIR)$(DKMS_SRCDIR)
	install -m 0644 $(DKMS_FILES) $(DESTDIR)$(DKMS_SRCDIR)/
	sed 's|#MODULE_VERSION#|$(VERSION)|' kmod/dkms.conf \
		>$(DESTDIR)$(DKMS_SRCDIR)/dkms.conf
	chmod 0644 $(DESTDIR)$(DKMS_SRCDIR)/dkms.conf

kmod:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod modules

kmod-scribble:
	@mkdir -p $(KMOD_SCRIBBLE_DIR)
	cp $(KMOD_SRCS) $(KMOD_SCRIBBLE_DIR)/
	$(MAKE) -C $(KDIR) M=$(abspath $(KMOD_SCRIBBLE_DIR)) \
		KCFLAGS=-DFREEHINT_SCRIBBLE modules

kmod-tests: $(KMOD_TEST_PROGS)

$(O)/tests/kmod/%: tests/kmod/%.c tests/kmod/fhtest.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -D_GNU_SOURCE -static -pthread -o $@ $<

kmod-clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod clean
	rm -rf $(KMOD_SCRIBBLE_DIR) $(O)/tests/kmod
