#!/bin/sh
# mkbundle.sh [flags] DIR [CMD ARGS...]
#
# Makes an OCI bundle in DIR: a busybox rootfs (testdata/mkrootfs.sh, with
# bin/probe as /probe when it exists) and a config.json from
# `${BERTH:-bin/berth} oci spec --rootless=false` or, failing that,
# `runc spec`, with process.args set to CMD ARGS (default /probe).
# Flags (before DIR): -probe PATH, -berth PATH, -tty, -rw, -hostname NAME, -v.
# The work is done by testdata/mkbundle (Go), built on first use.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${MKBUNDLE_BIN:-$root/bin/mkbundle}
mkdir -p "$(dirname "$out")"
CGO_ENABLED=0 go -C "$root" build -o "$out" ./testdata/mkbundle
# Resolve bin/probe and bin/berth against the repository when the caller
# runs from elsewhere and did not set them.
[ -n "${PROBE:-}" ] || { [ -e bin/probe ] || PROBE=$root/bin/probe; }
[ -n "${BERTH:-}" ] || { [ -e bin/berth ] || BERTH=$root/bin/berth; }
export PROBE=${PROBE:-bin/probe} BERTH=${BERTH:-bin/berth}
exec "$out" -mkrootfs "$here/mkrootfs.sh" "$@"
