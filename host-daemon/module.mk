# host-daemon: build rules (filled in by the host-daemon work)
