#!/bin/sh
# Userspace code follows the repository's .clang-format.
cd "$(dirname "$0")/../.." || exit 1
if make -s format-check; then
	echo "PASS clang-format"
else
	echo "FAIL clang-format: run 'make format'"
	exit 1
fi
