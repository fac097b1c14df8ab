#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Codec benchmark: range batch encode/decode throughput and wire size,
from build/bench/codec (bench/codec.c); writes docs/bench/10-codec.md.

  bench/codec.py [--batch N] [--seconds S]

No guest boots here: the section's machine has no accelerator.
"""
import argparse
import subprocess
import sys

import benchlib as b

NOTES = """- A *block* is one free buddy block as the guest kernel hands it over (the
  input); a *wire range* is what goes on the wire after the encoder
  coalesced adjacent blocks of a batch. "M blocks/s" counts input blocks;
  "M wire ranges/s" counts decoded ranges.
- Encoding is the agent's whole path per batch: build the range set, sort
  and coalesce, `fh_batch_pack`, `fh_frame_put`. Decoding is the host's:
  `fh_msg_pull` (header checks, protobuf decode, field checks), then
  `fh_batch_unpack` (overflow, order and limit checks).
- Bytes are whole frames (12-byte header included) divided by input
  blocks, by wire ranges, and by GiB of free memory described.
- Reference: virtio-balloon, counted at 8 bytes per reported block (the
  size of one address in its reporting virtqueue's scatter-gather
  element, assumed here, not measured); the last column applies 8 bytes
  per block to the same blocks. virtio-balloon does not report blocks
  below its reporting order (order 9 on x86-64) at all, so in the
  fragmented guest it would describe nothing.
- Throughput drops when other jobs share the machine (see the load
  average above); the byte counts do not change."""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--seconds", type=int, default=2,
                    help="least time of each measurement")
    b.add_accel(ap, guests=False)
    args = ap.parse_args()
    prov = b.Provenance(accel=None)
    subprocess.run(["make", "-s", "-C", b.ROOT, "build/bench/codec"],
                   check=True)
    cmd = ["build/bench/codec", "--batch", str(args.batch), "--seconds",
           str(args.seconds)]
    out = subprocess.run(cmd, cwd=b.ROOT, check=True, capture_output=True,
                         text=True).stdout
    print(out)
    doc = ["## Range codec (bench/codec.c)", "",
           "Command: `bench/run.sh codec` (runs `python3 bench/codec.py "
           "--batch %d --seconds %d`, which runs `%s`): one thread, `-O2`; "
           "batches of %d blocks (the agent's default is 1024)."
           % (args.batch, args.seconds, " ".join(cmd), args.batch), "",
           out.strip(), "", NOTES]
    b.write_doc("10-codec", "\n".join(doc), prov)
    return 0


if __name__ == "__main__":
    sys.exit(main())
