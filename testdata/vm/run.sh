#!/usr/bin/env bash
# Run berth's test suite inside QEMU (TCG) VMs with a pure cgroup v2 and a pure
# cgroup v1 layout. See README.md in this directory.
#
#   testdata/vm/run.sh [all|v2|v1|systemd|systemd-v2|systemd-v1|bench] [bench]
#
# v2 and v1 boot an initramfs with a busybox init; the systemd modes boot a
# Debian root filesystem with systemd as PID 1 (built once with mmdebstrap,
# cached) and run only the packages that need systemd (sd_only below).
#
# Environment:
#   VMTEST_PKGS          what to test instead of every repo package with tests:
#                        space-separated Go package patterns of this repo
#                        (./cgroupfs), directories of other modules (absolute
#                        paths) or prebuilt *.test binaries; host-only
#                        packages (host_only below: ./tests/engines) are
#                        always left out
#   VMTEST_RUN           -test.run regexp passed to every test binary
#   VMTEST_TEST_ARGS     more flags for every test binary (e.g. -test.short)
#   VMTEST_TIMEOUT       bound of one whole VM run (timeout(1) syntax), 30m
#   VMTEST_TEST_TIMEOUT  -test.timeout of each test binary, 20m
#   VMTEST_CMD=bench     run bin/bench (./tools/bench) instead of the tests (v2)
#   VMTEST_BENCH_ARGS    arguments for bin/bench
#   VMTEST_MEM, VMTEST_SMP  VM size (4G, 2)
#   VMTEST_SCRATCH       ext4 (default): /tmp and /var/lib on an ext4 RAM disk
#                        of VMTEST_SCRATCH_MB (2048) MiB, like the hosts' disks;
#                        tmpfs: leave them on the tmpfs root
#   VMTEST_KERNEL_PKG    Debian kernel package (default: what linux-image-amd64
#                        depends on)
#   VMTEST_MODULES       extra kernel modules to load (names)
#   VMTEST_EXTRA         extra repo-relative paths to copy under /berth
#   VMTEST_PVH=0         boot the compressed bzImage instead of the cached,
#                        decompressed vmlinux (PVH entry; saves ~3 s a boot)
#   VMTEST_QUIET=1       do not stream the console, print only the summary
#   VMTEST_KEEP=1        keep the staging directory
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="$repo/.cache/vm"
mkdir -p "$cache"

note() { printf 'vmtest: %s\n' "$*" >&2; }
die() {
	note "error: $*"
	exit 2
}

# ---------------------------------------------------------------- arguments
modes=()
cmd=${VMTEST_CMD:-test}
for a in "$@"; do
	case "$a" in
	"" | all) modes+=(v2 v1 systemd-v2 systemd-v1) ;;
	v1 | v2 | systemd-v2 | systemd-v1) modes+=("$a") ;;
	systemd) modes+=(systemd-v2 systemd-v1) ;;
	bench) cmd=bench ;;
	test) cmd="test" ;;
	*) die "unknown argument '$a' (want all, v2, v1, systemd, systemd-v2, systemd-v1 or bench)" ;;
	esac
done
if [ "$cmd" = bench ]; then
	modes=(v2)
elif [ "${#modes[@]}" -eq 0 ]; then
	modes=(v2 v1 systemd-v2 systemd-v1)
fi
want_plain=0
want_sd=0
for m in "${modes[@]}"; do
	case "$m" in
	systemd-*) want_sd=1 ;;
	*) want_plain=1 ;;
	esac
done
vm_timeout=${VMTEST_TIMEOUT:-30m}
for t in qemu-system-x86_64 cpio timeout apt-get dpkg-deb; do
	command -v "$t" >/dev/null || die "$t is missing (run 'make deps')"
done
[ -x /bin/busybox ] || die "/bin/busybox is missing (run 'make deps': busybox-static)"

# ---------------------------------------------------------------- workspace
work=$(mktemp -d "$cache/run.XXXXXX")
qpid=
tailpid=
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
	local rc=$?
	if [ -n "$tailpid" ]; then kill "$tailpid" 2>/dev/null || true; fi
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		note "stopping the VM (pid $qpid)"
		kill "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	if [ "${VMTEST_KEEP:-0}" = 1 ]; then
		note "kept $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stage="$work/root"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,dev,proc,sys,run,tmp,root,var/lib,var/tmp,lib64}
mkdir -p "$stage/berth/bin" "$stage/berth/vmtest/tests"

# ---------------------------------------------------------------- kernel
kernel_pkg() {
	if [ -n "${VMTEST_KERNEL_PKG:-}" ]; then
		echo "$VMTEST_KERNEL_PKG"
		return
	fi
	# the flavour linux-image-amd64 currently points at
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

fetch_kernel() {
	local pkg dir deb
	pkg=$(kernel_pkg || true)
	if [ -z "$pkg" ]; then
		# no apt metadata: reuse whatever was fetched before
		dir=$(find "$cache/kernel" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort -V | tail -n 1)
		if [ -z "$dir" ] || [ ! -f "$dir/.complete" ]; then
			die "cannot resolve the kernel package; set VMTEST_KERNEL_PKG"
		fi
		echo "$dir"
		return
	fi
	dir="$cache/kernel/$pkg"
	if [ -f "$dir/.complete" ]; then
		echo "$dir"
		return
	fi
	note "fetching $pkg into $dir"
	rm -rf "$dir" "$cache/deb"
	mkdir -p "$dir" "$cache/deb"
	if ! (cd "$cache/deb" && apt-get download -q "$pkg" >/dev/null 2>&1); then
		note "apt-get download failed; refreshing the package lists"
		apt-get update -qq >/dev/null
		(cd "$cache/deb" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
	fi
	deb=$(find "$cache/deb" -name "${pkg}_*.deb" | head -n 1)
	dpkg-deb -x "$deb" "$dir"
	rm -rf "$cache/deb"
	# Modules may be compressed (.ko.xz / .ko.zst); busybox insmod wants them plain.
	find "$dir/lib/modules" -name '*.ko.xz' -print0 | xargs -0 -r -P "$(nproc)" -n 64 xz -d
	find "$dir/lib/modules" -name '*.ko.zst' -print0 | xargs -0 -r -P "$(nproc)" -n 64 zstd -q -d --rm
	gen_modules_dep "$dir"
	touch "$dir/.complete"
	echo "$dir"
}

# The .deb does not ship modules.dep (depmod makes it at install time) and
# kmod may not be installed: rebuild it from each module's .modinfo
# "depends=" entry, in modules.dep's own format, when it is missing.
gen_modules_dep() {
	local mdir
	mdir=$(find "$1/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)
	[ -f "$mdir/modules.dep" ] && return
	(
		cd "$mdir"
		find kernel -name '*.ko' -print0 | xargs -0 grep -a -z -H '^depends=' |
			tr '\0' '\n' | awk '
			# input: "kernel/path/mod.ko:depends=a,b" per module
			{
				i = index($0, ":depends=")
				path = substr($0, 1, i - 1)
				deps[path] = substr($0, i + 9)
				n = split(path, parts, "/")
				name = parts[n]; sub(/\.ko$/, "", name); gsub(/-/, "_", name)
				where[name] = path
			}
			END {
				for (p in deps) {
					line = p ":"
					k = split(deps[p], d, ",")
					for (j = 1; j <= k; j++) {
						dn = d[j]; gsub(/-/, "_", dn)
						if (dn != "" && (dn in where)) line = line " " where[dn]
					}
					print line
				}
			}' | sort >modules.dep
	)
}

# Resolve modules plus their dependencies from modules.dep, in load order
# (dependencies first). Prints "<path relative to the module dir> [optional]".
resolve_modules() {
	local mdir=$1
	shift
	awk -v want="$*" '
		function visit(p, opt,   k, d, j) {
			if (p in seen) return
			seen[p] = 1
			k = split(dep[p], d, " ")
			# modules.dep lists the deepest dependency last
			for (j = k; j >= 1; j--) visit(d[j], opt)
			print p (opt ? " optional" : "")
		}
		{
			p = $1; sub(/:$/, "", p)
			dep[p] = ""
			for (i = 2; i <= NF; i++) dep[p] = dep[p] " " $i
			n = split(p, parts, "/")
			name = parts[n]; sub(/\.ko(\.xz|\.zst|\.gz)?$/, "", name); gsub(/-/, "_", name)
			where[name] = p
		}
		END {
			k = split(want, w, " ")
			for (i = 1; i <= k; i++) {
				name = w[i]; opt = 0
				if (name ~ /\?$/) { opt = 1; sub(/\?$/, "", name) }
				if (!(name in where)) {
					if (!opt) printf "vmtest: module %s not found (built in?)\n", name > "/dev/stderr"
					continue
				}
				visit(where[name], opt)
			}
		}' "$mdir/modules.dep"
}

kdir=$(fetch_kernel)
kver=$(basename "$(find "$kdir/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
vmlinuz="$kdir/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || die "no $vmlinuz"

# TCG needs ~3 s to run the bzImage's own xz decompressor on every boot.
# Decompress it once into an ELF vmlinux, which QEMU starts directly through
# its PVH entry point (Debian kernels have CONFIG_PVH=y).
vmlinux_of() { # bzImage -> prints the path of the cached ELF vmlinux
	local out="$kdir/boot/vmlinux-$kver" off
	if [ ! -s "$out" ]; then
		off=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$1" | head -n 1 | cut -d: -f1)
		[ -n "$off" ] || return 1
		tail -c +"$((off + 1))" "$1" | xz -dc --single-stream >"$out.tmp" 2>/dev/null || true
		if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" != 7f454c46 ] ||
			! LC_ALL=C grep -aq 'Xen' "$out.tmp"; then
			rm -f "$out.tmp"
			return 1
		fi
		mv "$out.tmp" "$out"
	fi
	echo "$out"
}
boot_kernel=$vmlinuz
if [ "${VMTEST_PVH:-1}" = 1 ]; then
	if k=$(vmlinux_of "$vmlinuz"); then boot_kernel=$k; else note "no PVH vmlinux; booting the bzImage"; fi
fi
note "kernel $kver ($(basename "$kdir")), booting $(basename "$boot_kernel")"

# "?" marks modules that may be absent or fail to load. crc32c_generic is
# libcrc32c's soft dependency (modinfo "softdep=pre: crc32c"), which
# modules.dep does not list; without it nf_tables cannot load. nft_fib_ipv4
# and nft_fib_ipv6 are needed by berth's published-port rules ("fib daddr
# type local") in its ip and ip6 tables; nf_nat's IPv6 half and
# nf_defrag_ipv6 come with nf_nat and nf_conntrack. loop, xfs and quota_v2
# are for --storage-opt size= on a loop-mounted filesystem with project
# quotas: ext4's quota feature keeps its quota files in the v2 format
# (quota_v2), which the kernel would otherwise ask modprobe for.
modules="crc32c_generic crc32c_intel? overlay veth bridge br_netfilter? nf_tables nft_nat nft_chain_nat nf_nat nft_masq nft_redir
nft_ct nf_conntrack nft_fib_inet? nft_fib_ipv4 nft_fib_ipv6 nft_reject_inet? nft_compat? tun dummy
macvlan? ipvlan? ext4? loop xfs quota_v2 ${VMTEST_MODULES:-}"
# shellcheck disable=SC2086 # the list is split on purpose
resolve_modules "$kdir/lib/modules/$kver" $modules >"$work/modules.load"
while read -r ko _; do
	mkdir -p "$stage/lib/modules/$kver/$(dirname "$ko")"
	cp "$kdir/lib/modules/$kver/$ko" "$stage/lib/modules/$kver/$ko"
done <"$work/modules.load"
cp "$work/modules.load" "$stage/lib/modules/vmtest.load"
# brd (the RAM disk behind the VM's ext4 /tmp) is loaded by init, with its size
if [ -f "$kdir/lib/modules/$kver/kernel/drivers/block/brd.ko" ]; then
	mkdir -p "$stage/lib/modules/$kver/kernel/drivers/block"
	cp "$kdir/lib/modules/$kver/kernel/drivers/block/brd.ko" "$stage/lib/modules/$kver/kernel/drivers/block/"
fi
note "$(wc -l <"$work/modules.load") kernel modules"

# ---------------------------------------------------------------- binaries
cd "$repo"
export CGO_ENABLED=0
if [ ! -x bin/berth ] || [ ! -x bin/probe ]; then
	note "bin/berth or bin/probe missing: make build"
	if ! make build >&2; then
		[ -n "${VMTEST_PKGS:-}" ] || die "make build failed"
		note "WARNING: make build failed; going on without berth (VMTEST_PKGS is set)"
	fi
fi
for b in berth probe; do
	if [ -x "bin/$b" ]; then cp "bin/$b" "$stage/berth/bin/$b"; fi
done
# testdata/mkimage.sh (the container tests' busybox image) uses it; the VM has no go.
CGO_ENABLED=0 go build -trimpath -o "$stage/berth/bin/mkimage" ./testdata/mkimage || die "build mkimage"
if [ "$cmd" = bench ]; then
	[ -d tools/bench ] || die "no ./tools/bench in this tree"
	note "building bin/bench"
	CGO_ENABLED=0 go build -trimpath -o "$stage/berth/bin/bench" ./tools/bench
	CGO_ENABLED=0 go build -trimpath -o "$stage/berth/bin/mkbundle" ./testdata/mkbundle
fi

# the repo's test scripts and data (not this harness), plus VMTEST_EXTRA
mkdir -p "$stage/berth/testdata"
for f in testdata/*; do
	[ "$f" = testdata/vm ] || cp -a "$f" "$stage/berth/testdata/"
done
cp -a go.mod Makefile dist "$stage/berth/" 2>/dev/null || true
for x in ${VMTEST_EXTRA:-}; do
	mkdir -p "$stage/berth/$(dirname "$x")"
	cp -a "$x" "$stage/berth/$x"
done

# Copy a package directory's non-Go files and its testdata, so the test runs
# in a directory that looks like its source directory.
copy_pkgdir() { # src dst
	mkdir -p "$2"
	find "$1" -maxdepth 1 -type f ! -name '*.go' -exec cp -a {} "$2/" \;
	if [ -d "$1/testdata" ] && [ ! -e "$2/testdata" ]; then cp -a "$1/testdata" "$2/"; fi
}

list="$work/list"          # "<import path> <binary in the VM> <cwd in the VM>"
: >"$list"
sdlist="$work/sdlist"      # the same for the systemd modes
: >"$sdlist"
buildfail="$work/buildfail" # packages whose test binary did not compile
: >"$buildfail"
nbuild=0
add_pkg() { # import-path src-dir build-dir(for go test -c) vm-dir
	local pkg=$1 src=$2 bdir=$3 vmdir=$4 name h
	for h in $host_only; do
		if [ "$pkg" = "$h" ]; then
			note "leaving out $pkg: it runs on the host only (see host_only)"
			return
		fi
	done
	local into=$list only=
	for h in $sd_only; do
		if [ "$pkg" = "$h" ]; then into=$sdlist; fi
	done
	# Asked for by name (VMTEST_PKGS), a package runs in every mode.
	if [ -z "${VMTEST_PKGS:-}" ]; then
		for h in $v2_only; do
			if [ "$pkg" = "$h" ]; then only=v2; fi
		done
	fi
	if [ "$into" = "$list" ] && [ "$want_plain" = 0 ]; then return; fi
	if [ "$into" = "$sdlist" ] && [ "$want_sd" = 0 ]; then return; fi
	name=$(echo "$pkg" | tr '/.' '__').test
	if (cd "$bdir" && go test -c -o "$stage/berth/vmtest/tests/$name" .) >"$work/build.log" 2>&1; then
		if [ -f "$stage/berth/vmtest/tests/$name" ]; then
			copy_pkgdir "$src" "$stage$vmdir"
			echo "$pkg /berth/vmtest/tests/$name $vmdir $only" >>"$into"
			nbuild=$((nbuild + 1))
		fi
	else
		note "BUILD FAILED: $pkg"
		sed 's/^/    /' "$work/build.log" >&2
		echo "$pkg - /" >>"$into"
		echo "$pkg" >>"$buildfail"
	fi
}

module=$(go list -m)
# The rule: every package with tests runs in the VMs (the unit packages,
# tests/core, tests/containers: they start real containers, so namespaces,
# mounts, cgroups and the kernel's path resolution are what they test)
# unless it is listed here. A package belongs here only when it needs what
# the VMs lack or nothing it checks depends on the kernel or the cgroup
# mode: tests/engines drives podman and containerd, which are installed on
# the host only; tests/cli checks the command line (parsing, output, man
# pages built with the Go toolchain). Such packages run in the host suite
# (make test).
host_only="$module/tests/engines $module/tests/cli"
# Packages whose tests depend on the kernel but not on the cgroup mode
# (images, build, networking, file handling) run in the v2 VM and not again
# in the v1 one, where only what a cgroup hierarchy changes is worth the
# time: containers, the OCI runtime, cgroupfs, the init and the monitor.
v2_only=""
for p in buildctx image internal/helperbin netns netns/etcfiles netns/ipam netns/link \
	netns/nft netns/nsfile network overlay safetree volume passwd tests/build tests/network; do
	v2_only="$v2_only $module/$p"
done
# Packages that need systemd as PID 1 run only in the systemd modes, and
# only they run there (each systemd VM run stays short).
sd_only="$module/tests/systemd"
if [ -n "${VMTEST_PKGS:-}" ]; then
	for p in $VMTEST_PKGS; do
		if [ -f "$p" ] && [ -x "$p" ]; then # prebuilt test binary
			name=$(basename "$p")
			cp "$p" "$stage/berth/vmtest/tests/$name"
			echo "${name%.test} /berth/vmtest/tests/$name /berth" >>"$list"
			nbuild=$((nbuild + 1))
		elif [ -d "$p" ] && [ "${p#/}" != "$p" ] && [ "${p#"$repo"/}" = "$p" ]; then # another module
			pkg=$(cd "$p" && go list .)
			add_pkg "$pkg" "$p" "$p" "/berth/_ext/$(basename "$p")"
		else # a package pattern of this repo
			while read -r pkg dir; do
				[ -n "$pkg" ] || continue
				add_pkg "$pkg" "$dir" "$dir" "/berth${dir#"$repo"}"
			done < <(go list -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "$p")
		fi
	done
else
	while read -r pkg dir; do
		[ -n "$pkg" ] || continue
		add_pkg "$pkg" "$dir" "$dir" "/berth${dir#"$repo"}"
	done < <(go list -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./...)
fi
if [ "$cmd" = test ] && [ "$want_plain" = 1 ] && [ ! -s "$list" ]; then
	die "no package of $module has tests (set VMTEST_PKGS)"
fi
if [ "$want_sd" = 1 ] && [ ! -s "$sdlist" ]; then
	die "the systemd modes have no package to run (${sd_only}; check VMTEST_PKGS)"
fi
note "$nbuild test binaries, $(wc -l <"$list") packages (+ $(wc -l <"$sdlist") for the systemd modes)"
cp "$list" "$stage/berth/vmtest/list"
cp "$sdlist" "$stage/berth/vmtest/sdlist"

# harness configuration read by the VM's init
{
	printf 'VMTEST_TEST_TIMEOUT=%q\n' "${VMTEST_TEST_TIMEOUT:-20m}"
	printf 'VMTEST_RUN=%q\n' "${VMTEST_RUN:-}"
	printf 'VMTEST_TEST_ARGS=%q\n' "${VMTEST_TEST_ARGS:-}"
	printf 'VMTEST_BENCH_ARGS=%q\n' "${VMTEST_BENCH_ARGS:-}"
	printf 'VMTEST_CMD=%q\n' "$cmd"
	printf 'VMTEST_SCRATCH=%q\n' "${VMTEST_SCRATCH:-ext4}"
	printf 'VMTEST_SCRATCH_MB=%q\n' "${VMTEST_SCRATCH_MB:-2048}"
} >"$stage/berth/vmtest/env"

# ---------------------------------------------------------------- userland
cp /bin/busybox "$stage/bin/busybox"
cp "$here/init" "$stage/init"
chmod 0755 "$stage/init"
# runc and crun (for comparisons and benchmarks) with their shared libraries
copy_with_libs() {
	local bin=$1 lib
	cp -L "$bin" "$stage/usr/local/bin/"
	while read -r lib; do
		[ -n "$lib" ] || continue
		mkdir -p "$stage$(dirname "$lib")"
		cp -L "$lib" "$stage$lib"
	done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}
for t in runc crun; do
	if p=$(command -v "$t"); then copy_with_libs "$p"; else note "WARNING: $t not installed"; fi
done
# mkfs for the project-quota filesystems of the --storage-opt tests
# (busybox's mke2fs knows no project feature and there is no busybox xfs)
for t in mkfs.ext4 mkfs.xfs; do
	if p=$(PATH="$PATH:/usr/sbin:/sbin" command -v "$t"); then
		copy_with_libs "$p"
	else
		note "WARNING: $t not installed (make deps: e2fsprogs, xfsprogs)"
	fi
done
if [ -f /etc/mke2fs.conf ]; then cp /etc/mke2fs.conf "$stage/etc/"; fi
cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$stage/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$stage/etc/hosts"
printf 'nameserver 127.0.0.53\n' >"$stage/etc/resolv.conf"
printf 'berth-vm\n' >"$stage/etc/hostname"
printf 'hosts: files dns\n' >"$stage/etc/nsswitch.conf"
printf 'ID=berth-vmtest\nNAME="berth test VM"\n' >"$stage/etc/os-release"
ln -s /proc/self/mounts "$stage/etc/mtab"
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3

initrd="$work/initrd.cpio"
if [ "$want_plain" = 1 ]; then
	(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$initrd"
	note "initramfs $(du -h "$initrd" | cut -f1) (uncompressed: TCG decompresses slowly)"
fi

# ---------------------------------------------------------------- systemd modes
# The root disk: Debian with systemd, made once by mmdebstrap and cached
# under a key of its inputs; each boot uses it as a snapshot (-drive
# snapshot=on), so no run changes it. The payload disk holds this run's
# /berth (the same tree the initramfs above carries). A small initramfs
# (busybox, the modules, sdinit) mounts both and switch_roots to systemd.
sd_suite=${VMTEST_SD_SUITE:-bookworm}
sd_mirror=${VMTEST_SD_MIRROR:-http://deb.debian.org/debian}
sd_packages=systemd,systemd-sysv,busybox-static
sd_root_mb=${VMTEST_SD_ROOT_MB:-4096}
sd_rootfs() { # prints the path of the cached root disk image
	local ver key dir
	command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (run 'make deps')"
	command -v mke2fs >/dev/null || die "mke2fs is missing (e2fsprogs)"
	ver=$(dpkg-query -W -f '${Version}' mmdebstrap 2>/dev/null || echo unknown)
	key=$(printf '%s\n' "$sd_suite" "$sd_mirror" "$sd_packages" "$sd_root_mb" "$ver" minbase |
		sha256sum | cut -c1-16)
	dir="$cache/systemd/$key"
	if [ -f "$dir/.complete" ]; then
		echo "$dir/root.img"
		return
	fi
	note "building the systemd root disk ($sd_suite: $sd_packages) into $dir"
	# one cached root at a time: the older keys are stale
	rm -rf "$cache/systemd"
	mkdir -p "$dir"
	mmdebstrap --quiet --mode=root --variant=minbase --include="$sd_packages" \
		"$sd_suite" "$dir/rootfs" "$sd_mirror" >&2 || die "mmdebstrap failed"
	mke2fs -q -F -t ext4 -L berthroot -d "$dir/rootfs" "$dir/root.img" "${sd_root_mb}M" >&2 ||
		die "mke2fs of the root disk failed"
	rm -rf "$dir/rootfs"
	touch "$dir/.complete"
	echo "$dir/root.img"
}
if [ "$want_sd" = 1 ]; then
	sd_root=$(sd_rootfs)
	cp "$here/sdinit" "$stage/berth/vmtest/sdinit"
	chmod 0755 "$stage/berth/vmtest/sdinit"
	sd_payload="$work/payload.img"
	mb=$(du -sm "$stage/berth" | cut -f1)
	mke2fs -q -F -t ext4 -L berthpayload -d "$stage/berth" "$sd_payload" "$((mb * 3 / 2 + 256))M" >/dev/null ||
		die "mke2fs of the payload disk failed"
	sdi="$work/sdinitrd"
	mkdir -p "$sdi/bin" "$sdi/dev" "$sdi/proc" "$sdi/sys" "$sdi/newroot" "$sdi/lib/modules"
	cp /bin/busybox "$sdi/bin/busybox"
	cp "$here/sdinit" "$sdi/init"
	chmod 0755 "$sdi/init"
	# shellcheck disable=SC2086 # the list is split on purpose
	resolve_modules "$kdir/lib/modules/$kver" $modules virtio_pci virtio_blk ext4 >"$sdi/lib/modules/vmtest.load"
	while read -r ko _; do
		mkdir -p "$sdi/lib/modules/$kver/$(dirname "$ko")"
		cp "$kdir/lib/modules/$kver/$ko" "$sdi/lib/modules/$kver/$ko"
	done <"$sdi/lib/modules/vmtest.load"
	mknod -m 600 "$sdi/dev/console" c 5 1
	mknod -m 666 "$sdi/dev/null" c 1 3
	sd_initrd="$work/sdinitrd.cpio"
	(cd "$sdi" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$sd_initrd"
	rm -rf "$sdi"
	note "systemd modes: root disk $sd_root, payload $(du -h --apparent-size "$sd_payload" | cut -f1), initramfs $(du -h "$sd_initrd" | cut -f1)"
fi
if [ "${VMTEST_KEEP:-0}" != 1 ]; then rm -rf "$stage"; fi

# ---------------------------------------------------------------- boot
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

mkdir -p "$cache/logs"
overall=0
summaries=()
for mode in "${modes[@]}"; do
	log="$cache/logs/$mode.log"
	: >"$log"
	append="console=ttyS0 panic=-1 loglevel=4 vmtest.mode=$mode"
	# the packages this mode runs: those not kept for another one
	mlist=$work/list.$mode
	awk -v m="$mode" '$4 == "" || $4 == m' "$list" >"$mlist"
	boot=(-initrd "$initrd")
	case "$mode" in
	v2)
		# no v1 controller can be mounted at all (v1: the init just never
		# mounts cgroup2; the kernel has no switch to disable v2)
		append="$append cgroup_no_v1=all"
		;;
	systemd-*)
		mlist=$sdlist
		boot=(-initrd "$sd_initrd"
			-drive "file=$sd_root,if=virtio,format=raw,snapshot=on"
			-drive "file=$sd_payload,if=virtio,format=raw,snapshot=on")
		append="$append systemd.unit=berth-vmtest.target systemd.show_status=error"
		if [ "$mode" = systemd-v1 ]; then
			# legacy: v1 controllers and a v1 name=systemd hierarchy, no cgroup2
			append="$append systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1"
		else
			append="$append systemd.unified_cgroup_hierarchy=1"
		fi
		;;
	esac
	note "booting the $mode VM (bound $vm_timeout; console in $log)"
	t0=$(now)
	timeout -k 10 "$vm_timeout" qemu-system-x86_64 -accel tcg,thread=multi -cpu max \
		-m "${VMTEST_MEM:-4G}" -smp "${VMTEST_SMP:-2}" \
		-display none -monitor none -serial stdio -parallel none -no-reboot -nic none \
		-kernel "$boot_kernel" "${boot[@]}" -append "$append" \
		</dev/null >"$log" 2>&1 &
	qpid=$!
	if [ "${VMTEST_QUIET:-0}" != 1 ]; then
		tail -n +1 -f --pid="$qpid" "$log" | tr -d '\r' &
		tailpid=$!
	fi
	booted=
	while kill -0 "$qpid" 2>/dev/null; do
		if [ -z "$booted" ] && grep -q '^VMTEST-BOOTED' "$log"; then booted=$(now); fi
		sleep 0.2
	done
	rc=0
	wait "$qpid" || rc=$?
	qpid=
	t1=$(now)
	if [ -n "$tailpid" ]; then
		wait "$tailpid" 2>/dev/null || true
		tailpid=
	fi

	tr -d '\r' <"$log" >"$work/console"
	c="$work/console"
	npass=$(grep -c -E '^ *--- PASS' "$c" || true)
	nfail=$(grep -c -E '^ *--- FAIL' "$c" || true)
	nskip=$(grep -c -E '^ *--- SKIP' "$c" || true)
	guest_boot=$(sed -n 's/^VMTEST-BOOTED .*uptime=\([0-9.]*\).*/\1/p' "$c" | head -n 1)
	bad=0
	reasons=()
	echo
	echo "=== vmtest $mode ($cmd): kernel $kver"
	while read -r pkg ex secs; do
		if [ "$ex" = 0 ]; then
			printf 'ok  \t%s\t%ss\n' "$pkg" "$secs"
		elif grep -qxF "$pkg" "$buildfail"; then
			printf 'FAIL\t%s [build failed]\n' "$pkg"
			bad=1
		else
			printf 'FAIL\t%s\t%ss (exit %s)\n' "$pkg" "$secs" "$ex"
			bad=1
		fi
	done < <(sed -n 's/^VMTEST-RESULT pkg=\([^ ]*\) exit=\([0-9]*\) secs=\([0-9.]*\).*/\1 \2 \3/p' "$c")
	# packages the VM never reported (it hung, crashed or ran out of time)
	while read -r pkg _; do
		if ! grep -q "^VMTEST-RESULT pkg=$pkg " "$c"; then
			printf 'FAIL\t%s [no result: the VM stopped first]\n' "$pkg"
		fi
	done < <([ "$cmd" = test ] && cat "$mlist")
	nres=$(grep -c '^VMTEST-RESULT' "$c" || true)
	if grep -q 'Kernel panic' "$c"; then
		bad=1
		reasons+=("kernel panic")
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		bad=1
		reasons+=("timed out after $vm_timeout")
	elif [ "$rc" != 0 ]; then
		bad=1
		reasons+=("qemu exited with status $rc")
	fi
	if ! grep -q '^VMTEST-DONE' "$c"; then
		bad=1
		reasons+=("no VMTEST-DONE: the VM hung, crashed or was stopped")
	fi
	if [ "$cmd" = test ] && [ "$nres" -lt "$(wc -l <"$mlist")" ]; then
		bad=1
		reasons+=("$nres of $(wc -l <"$mlist") packages reported")
	fi
	# The systemd packages are there to run: a skip there is a failure
	# (they skip only off the harness, where systemd is not PID 1).
	if [ "${mode#systemd-}" != "$mode" ] && [ "$nskip" -gt 0 ]; then
		bad=1
		reasons+=("$nskip tests skipped under systemd")
	fi
	if [ "${mode#systemd-}" != "$mode" ] && [ "$npass" -eq 0 ]; then
		bad=1
		reasons+=("no test passed under systemd")
	fi
	boot_s=-
	if [ -n "$booted" ]; then boot_s="$(secs "$t0" "$booted")s"; fi
	line="$mode: $((npass + nfail + nskip)) tests run: $npass passed, $nfail failed, $nskip skipped; boot ${boot_s} (guest uptime ${guest_boot:--}s), total $(secs "$t0" "$t1")s"
	if [ "$bad" = 0 ]; then
		line="PASS $line"
	else
		line="FAIL $line"
		overall=1
		for r in "${reasons[@]}"; do line="$line; $r"; done
		echo "--- console tail ($mode, full log: $log)"
		tail -n 60 "$c"
		echo "--- end of console tail"
	fi
	echo "$line"
	summaries+=("$line")
done

echo
echo "=== vmtest summary"
for s in "${summaries[@]}"; do echo "$s"; done
exit "$overall"
