# bench: build rules (filled in by the bench work)
