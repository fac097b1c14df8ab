# tests/: unit tests (cmocka), the fuzz target, and the check runner.
#
# tests/unit/test_<name>.c is one cmocka program per module. Tests of the
# shared code link libfreehint.a; tests named test_agent_* also link the
# agent's objects, test_hostd_* the host daemon's.

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
ifneq ($(WITH_LIBVIRT),yes)
UNIT_SRCS := $(filter-out tests/unit/test_hostd_libvirt%,$(UNIT_SRCS))
endif
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/%)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)
TEST_LIBS := $(LIBFREEHINT) $(CMOCKA_LIBS) $(EVENT_LIBS) $(PROTOBUF_LIBS)

$(O)/tests/test_agent_%: $(O)/tests/unit/test_agent_%.o $(AGENT_LIB) \
		$(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(AGENT_LIB) $(TEST_LIBS) \
		$(AGENT_LIBS)

$(O)/tests/test_hostd_%: $(O)/tests/unit/test_hostd_%.o $(HOSTD_LIB) \
		$(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(HOSTD_LIB) $(TEST_LIBS) \
		$(HOSTD_LIBS)

$(O)/tests/test_%: $(O)/tests/unit/test_%.o $(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_LIBS)

$(UNIT_SRCS:%.c=$(O)/%.o): $(O)/proto/freehint.pb-c.h

.PHONY: unit-tests run-unit
unit-tests: $(UNIT_BINS)

# Run every unit test once (make run-unit SAN=1 for the sanitizer build).
run-unit: unit-tests
	@tests/run-unit.sh $(UNIT_BINS)

# The whole suite. Each step in tests/checks.d reports its own cases.
check:
	scripts/install-deps.sh all
	$(MAKE) all unit-tests
	tests/run-checks.sh
