#!/bin/sh
# make deb: build the three Debian packages (freehint-agent, freehintd,
# freehint-dkms) from a copy of the tracked tree, so that debhelper's files
# never land in the checkout, then run lintian on them. The .deb files end
# up in build/deb/; lintian's report in build/deb/lintian.log. Fails when
# the build fails or lintian reports an error.
set -eu
cd "$(dirname "$0")/.."
out=build/deb
version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
src=$out/src/freehint-$version

rm -rf "$out"
mkdir -p "$src"
git ls-files -z | xargs -0 cp --parents -P -t "$src"
(cd "$src" && dpkg-buildpackage -b -us -uc -ui --no-pre-clean \
    >../build.log 2>&1) || {
	tail -n 40 "$out/src/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed, see $out/src/build.log" >&2
	exit 1
}
mv "$out"/src/*.deb "$out"/
rm -rf "$out/src/freehint-$version"
ls "$out"/*.deb
# Errors fail the build; warnings are shown.
if command -v lintian >/dev/null; then
	lintian --fail-on error "$out"/*.deb >"$out/lintian.log" 2>&1 || {
		cat "$out/lintian.log" >&2
		echo "build-deb: lintian reports errors" >&2
		exit 1
	}
	cat "$out/lintian.log"
fi
