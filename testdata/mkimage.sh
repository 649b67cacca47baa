#!/bin/sh
# mkimage.sh OUT.tar [TAG]
#
# Writes the busybox test image (default tag berth-test/busybox:latest) as a
# docker save archive for `berth load -i OUT.tar`, without network: layer 1
# is Debian's busybox-static with users root, nobody and app (1000, also in
# group extra 2000); layer 2 is bin/probe at /probe and /data/from-image.txt.
# The output is byte-for-byte reproducible, so the image ID is stable.
# BUSYBOX and PROBE override /bin/busybox and bin/probe (built by make build).
# The work is done by testdata/mkimage (Go), built on first use.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 OUT.tar [TAG]" >&2
	exit 2
fi
out=${MKIMAGE_BIN:-$root/bin/mkimage}
mkdir -p "$(dirname "$out")"
if command -v go >/dev/null 2>&1; then
	CGO_ENABLED=0 go -C "$root" build -o "$out" ./testdata/mkimage
elif [ ! -x "$out" ]; then
	# The test VM has no go; its harness ships a prebuilt bin/mkimage.
	echo "$0: go is not installed and $out is missing" >&2
	exit 1
fi
probe=${PROBE:-$root/bin/probe}
if [ ! -f "$probe" ]; then
	echo "$0: $probe not found: run make build (or set PROBE)" >&2
	exit 1
fi
exec "$out" -busybox "${BUSYBOX:-/bin/busybox}" -probe "$probe" "$@"
