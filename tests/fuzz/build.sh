#!/bin/sh
# Build the fuzz target and the corpus generator into build/fuzz/.
# The protocol's generated code comes from the ordinary build.
set -eu
cd "$(dirname "$0")/../.."
make -s build/proto/freehint.pb-c.c build/libfreehint.a
mkdir -p build/fuzz
CFLAGS="-std=gnu11 -D_GNU_SOURCE -g -O1 -Iproto -Ilib -Ibuild/proto"
LIBS="$(pkg-config --libs libevent libprotobuf-c)"
SRCS="proto/frame.c proto/msg.c proto/batch.c lib/rangeset.c lib/log.c
    lib/xmalloc.c build/proto/freehint.pb-c.c"
# shellcheck disable=SC2086
clang $CFLAGS -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -o build/fuzz/fuzz_frame \
    tests/fuzz/fuzz_frame.c $SRCS $LIBS
# shellcheck disable=SC2086
cc $CFLAGS -o build/fuzz/gen_corpus tests/fuzz/gen_corpus.c \
    build/libfreehint.a $LIBS
