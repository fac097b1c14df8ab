# proto: build rules (filled in by the proto work)
