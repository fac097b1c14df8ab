# bench/: `make bench` runs every bench/bench.d/*.sh in order. Each writes
# its figures as a Markdown section to docs/bench/<name>.md; bench/run.sh
# joins them into docs/benchmarks.md.
.PHONY: bench
bench:
	scripts/install-deps.sh all
	$(MAKE) all
	bench/run.sh

# Guest workloads of the benchmarks: static, for the busybox initramfs.
BENCH_GUEST := $(patsubst bench/guest/%.c,$(O)/bench/guest/%,\
	$(wildcard bench/guest/*.c))
.PHONY: bench-guest
bench-guest: $(BENCH_GUEST)

$(O)/bench/guest/%: bench/guest/%.c bench/guest/wl.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -D_GNU_SOURCE -static -o $@ $<

# The scale benchmark's load generator: N fake VMs for one freehintd.
BENCH_LOADGEN := $(O)/bench/freehint-loadgen
.PHONY: bench-loadgen
bench-loadgen: $(BENCH_LOADGEN)

$(BENCH_LOADGEN): $(O)/bench/loadgen.o $(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBFREEHINT) $(EVENT_LIBS) \
		$(PROTOBUF_LIBS) -lm -lpthread

$(O)/bench/loadgen.o: $(O)/proto/freehint.pb-c.h

# bench/codec: encode/decode throughput and wire size of range batches.
BENCH_CODEC := $(O)/bench/codec
$(O)/bench/codec.o: $(O)/proto/freehint.pb-c.h
$(BENCH_CODEC): $(O)/bench/codec.o $(LIBFREEHINT)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBFREEHINT) $(EVENT_LIBS) \
		$(PROTOBUF_LIBS)
all: $(BENCH_CODEC)
