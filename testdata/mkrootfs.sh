#!/bin/sh
# mkrootfs.sh DIR [--probe PATH]
#
# Makes a minimal busybox root filesystem in DIR from Debian's busybox-static:
# bin/busybox with a symlink per applet, sbin and usr/bin/usr/sbin as symlinks
# to bin, passwd/group with root, nobody, probe (1000) and a supplementary
# group "extra" (1001), and empty proc sys dev tmp (1777) root dirs.
# With --probe PATH the (static) probe binary is copied to DIR/probe.
set -eu

usage() { echo "usage: $0 DIR [--probe PATH]" >&2; exit 2; }

[ $# -ge 1 ] || usage
dir=$1; shift
probe=
while [ $# -gt 0 ]; do
	case $1 in
	--probe) [ $# -ge 2 ] || usage; probe=$2; shift 2 ;;
	--probe=*) probe=${1#--probe=}; shift ;;
	*) usage ;;
	esac
done

busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ]; then
	echo "$0: $busybox not found: apt-get install busybox-static" >&2
	exit 1
fi
# Debian's /bin/busybox must be the static build: the rootfs has no libc.
if command -v file >/dev/null 2>&1 && file -L "$busybox" | grep -q 'dynamically linked'; then
	echo "$0: $busybox is dynamically linked: apt-get install busybox-static" >&2
	exit 1
fi
if [ -n "$probe" ] && [ ! -f "$probe" ]; then
	echo "$0: probe $probe not found (go build -o bin/probe ./testdata/probe)" >&2
	exit 1
fi

case $probe in ''|/*) ;; *) probe=$(pwd)/$probe ;; esac
case $busybox in /*) ;; *) busybox=$(pwd)/$busybox ;; esac

mkdir -p "$dir"
cd "$dir"
mkdir -p bin etc root proc sys dev tmp run var/tmp home/probe
chmod 0755 . bin etc proc sys dev run
chmod 0700 root
chmod 1777 tmp var/tmp
cp "$busybox" bin/busybox
chmod 0755 bin/busybox
for applet in $(./bin/busybox --list); do
	[ "$applet" = busybox ] || ln -sf busybox "bin/$applet"
done
ln -sfn bin sbin
mkdir -p usr
ln -sfn ../bin usr/bin
ln -sfn ../bin usr/sbin

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
probe:x:1000:1000:probe:/home/probe:/bin/sh
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
nogroup:x:65534:
probe:x:1000:
extra:x:1001:probe
GROUP
chmod 0644 etc/passwd etc/group
chown 1000:1000 home/probe 2>/dev/null || true
: > etc/hostname
: > etc/hosts
: > etc/resolv.conf

if [ -n "$probe" ]; then
	cp "$probe" probe
	chmod 0755 probe
fi
