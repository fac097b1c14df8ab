#!/bin/sh
# Codec benchmark: range batch encode/decode throughput and wire size.
# Writes docs/bench/10-codec.md. Reproduce: bench/run.sh codec
set -eu
cd "$(dirname "$0")/../.."
make -s build/bench/codec
load=$(cut -d' ' -f1-3 /proc/loadavg)
out=$(build/bench/codec --batch 1024 --seconds 20)
echo "$out"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mkdir -p docs/bench
cat >docs/bench/10-codec.md <<EOM
## Range codec (bench/codec.c)

Reproduce with \`bench/run.sh codec\` (or \`make build/bench/codec &&
build/bench/codec --batch 1024 --seconds 20\`). Run on $(date -u +%Y-%m-%d),
${cpu:-unknown CPU}, $(nproc) CPUs, $(uname -m), one thread, \`-O2\`;
load average before the run: $load (throughput drops when other jobs
share the machine; the byte counts do not change).

$out

- A *block* is one free buddy block as the guest kernel hands it over (the
  input); a *wire range* is what goes on the wire after the encoder
  coalesced adjacent blocks of a batch. "M blocks/s" counts input blocks;
  "M wire ranges/s" counts decoded ranges. Batches hold 1024 blocks, the
  agent's default.
- Encoding is the agent's whole path per batch: build the range set, sort
  and coalesce, \`fh_batch_pack\`, \`fh_frame_put\`. Decoding is the host's:
  \`fh_msg_pull\` (header checks, protobuf decode, field checks), then
  \`fh_batch_unpack\` (overflow, order and limit checks).
- Bytes are whole frames (12-byte header included) divided by input
  blocks, by wire ranges, and by GiB of free memory described.
- Reference: virtio-balloon, counted at 8 bytes per reported block, which
  is 2 KiB per GiB when every block is 4 MiB; the last column applies 8
  bytes per block to the same blocks.
  virtio-balloon does not report blocks below its reporting order (order 9
  on x86-64) at all, so in the fragmented guest it would describe nothing.
EOM
echo "wrote docs/bench/10-codec.md"
