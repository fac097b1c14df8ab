# kmod: build rules (filled in by the kmod work)
