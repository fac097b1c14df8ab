# bench/: `make bench` runs every bench/bench.d/*.sh in order. Each writes
# its figures as a Markdown section to docs/bench/<name>.md; bench/run.sh
# joins them into docs/benchmarks.md.
.PHONY: bench
bench:
	scripts/install-deps.sh all
	$(MAKE) all
	bench/run.sh
