# tests: build rules (filled in by the tests work)
