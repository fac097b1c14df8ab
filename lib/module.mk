# lib: build rules (filled in by the lib work)
