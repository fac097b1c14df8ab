#!/bin/sh
# The userspace build is warning-free (a separate -Werror build tree, so
# that the other steps keep their objects).
cd "$(dirname "$0")/../.." || exit 1
if make -s -j2 O=build-werror CFLAGS="-O2 -g -Werror" all unit-tests; then
	echo "PASS build: -Wall -Wextra -Werror"
else
	echo "FAIL build: warnings or errors"
	exit 1
fi
