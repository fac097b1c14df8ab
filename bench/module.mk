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
