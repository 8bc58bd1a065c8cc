#!/usr/bin/env bash
# refresh.sh fetches the web UI's third-party files from the npm registry
# (`npm pack`, no CDN) at the pinned versions below and copies them, with
# their license files, next to the pages:
#
#   uPlot    -> webui/static/vendor/uplot/   (served; the charts)
#   axe-core -> webui/testdata/axe/          (browser tests only, never served)
#
# Run it from anywhere (make vendor-ui): it changes the files only when
# the pinned versions change. Nothing is fetched at run or build time; the
# files are committed and embedded.
set -euo pipefail

UPLOT_VERSION=1.6.32
AXE_VERSION=4.14.1

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() { # name version -> $work/<name>/package
	local name=$1 version=$2
	mkdir -p "$work/$name"
	(cd "$work/$name" && npm pack --silent "$name@$version" >/dev/null && tar xzf ./*.tgz)
	local got
	got=$(cd "$work/$name/package" && node -p 'require("./package.json").version' 2>/dev/null || sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' package.json | head -1)
	[ "$got" = "$version" ] || { echo "refresh.sh: $name: got $got, want $version" >&2; exit 1; }
}

fetch uplot "$UPLOT_VERSION"
dst="$root/webui/static/vendor/uplot"
mkdir -p "$dst"
cp "$work/uplot/package/dist/uPlot.iife.min.js" "$dst/uPlot.iife.min.js"
cp "$work/uplot/package/dist/uPlot.min.css" "$dst/uPlot.min.css"
cp "$work/uplot/package/LICENSE" "$dst/LICENSE"
echo "uplot $UPLOT_VERSION" > "$dst/VERSION"

fetch axe-core "$AXE_VERSION"
dst="$root/webui/testdata/axe"
mkdir -p "$dst"
cp "$work/axe-core/package/axe.min.js" "$dst/axe.min.js"
cp "$work/axe-core/package/LICENSE" "$dst/LICENSE"
echo "axe-core $AXE_VERSION" > "$dst/VERSION"

echo "vendored uplot $UPLOT_VERSION and axe-core $AXE_VERSION"
