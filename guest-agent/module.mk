# guest-agent: freehint-agent.
#
# AGENT_LIB holds every object but main.o, so that the unit tests
# (tests/unit/test_agent_*.c) link the real code; AGENT_LIBS are the extra
# link flags the agent needs beyond libfreehint.a, libevent and protobuf-c.
AGENT_SRCS := guest-agent/agent.c guest-agent/status.c \
	guest-agent/transport.c guest-agent/session.c \
	guest-agent/report.c guest-agent/hold.c guest-agent/snapshot.c \
	guest-agent/kmodfile.c guest-agent/kbatch.c guest-agent/allocrate.c \
	guest-agent/headroom.c \
	guest-agent/lease.c
AGENT_OBJS := $(AGENT_SRCS:%.c=$(O)/%.o)
AGENT_LIB := $(O)/guest-agent/libagent.a
AGENT_LIBS := $(SYSTEMD_LIBS)
AGENT_BIN := $(O)/freehint-agent

PROGRAMS += $(AGENT_BIN)
INSTALL_TARGETS += install-agent

$(AGENT_OBJS) $(O)/guest-agent/main.o: $(O)/proto/freehint.pb-c.h

$(AGENT_LIB): $(AGENT_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(AGENT_BIN): $(O)/guest-agent/main.o $(AGENT_LIB) $(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $(O)/guest-agent/main.o $(AGENT_LIB) \
		$(LIBFREEHINT) $(EVENT_LIBS) $(PROTOBUF_LIBS) $(AGENT_LIBS)

# Test peers for the black-box tests (tests/agent/).
AGENT_TEST_PROGS := $(O)/tests/agent/fh-testhost
agent-tests: $(AGENT_TEST_PROGS)
$(O)/tests/agent/fh-testhost: $(O)/tests/agent/fh-testhost.o $(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBFREEHINT) $(EVENT_LIBS) \
		$(PROTOBUF_LIBS)
$(O)/tests/agent/fh-testhost.o: $(O)/proto/freehint.pb-c.h
$(O)/tests/agent/%.o: ALL_CFLAGS += -Iguest-agent
.PHONY: agent-tests install-agent

INSTALLED_FILES += $(SBINDIR)/freehint-agent \
	$(UNITDIR)/freehint-agent.service $(MANDIR)/man8/freehint-agent.8 \
	$(SYSCONFDIR)/freehint/agent.conf.example
install-agent: $(AGENT_BIN) install-dirs \
		$(DESTDIR)$(MANDIR)/man8/freehint-agent.8
	install -m 0755 $(AGENT_BIN) $(DESTDIR)$(SBINDIR)/freehint-agent
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/freehint-agent.service \
		>$(DESTDIR)$(UNITDIR)/freehint-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/freehint-agent.service
	install -m 0644 guest-agent/agent.conf \
		$(DESTDIR)$(SYSCONFDIR)/freehint/agent.conf.example

# The agent's unit tests and test peers include agent.h.
$(O)/tests/unit/test_agent_%.o: ALL_CFLAGS += -Iguest-agent
