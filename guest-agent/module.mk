# guest-agent: build rules (filled in by the guest-agent work)
