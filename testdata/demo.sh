#!/bin/sh
# demo.sh: `make demo`. Loads the busybox test image that testdata/mkimage.sh
# builds (nothing comes from the internet), then runs containers the Docker
# way with berth: limits, a named volume, ps, logs, exec, stop, rm.
# testdata/demo-oci.sh shows the OCI runtime face on a bare bundle.
#
#   BERTH  berth command (default ./bin/berth)
set -eu
cd "$(dirname "$0")/.."

BERTH=${BERTH:-./bin/berth}
[ -x ./bin/berth ] || { echo "demo: ./bin/berth missing (make build)" >&2; exit 1; }
image=berth-test/busybox
web=demo-web-$$
vol=demo-data-$$
tmp=$(mktemp -d /tmp/berth-demo.XXXXXX)
cleanup() {
	$BERTH rm -f "$web" >/dev/null 2>&1 || true
	$BERTH volume rm -f "$vol" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@" 2>&1 | sed 's/^/  /'; }

bold "1. Load the busybox image built from Debian's busybox-static (no registry involved)"
./testdata/mkimage.sh "$tmp/busybox.tar" >/dev/null
show $BERTH load -i "$tmp/busybox.tar"
show $BERTH images $image

bold "2. A foreground container: stdio passes straight through, the exit status is the container's"
show $BERTH run --rm $image echo hello from a container
set +e
$BERTH run --rm $image sh -c 'exit 3'
echo "  exit status: $?"
set -e

bold "3. A detached web server with limits and a named volume"
show $BERTH run -d --name "$web" -m 64m --cpus 0.5 --pids-limit 100 -v "$vol:/data" $image \
	sh -c 'echo "<h1>hello from berth</h1>" > /data/index.html; echo serving; exec httpd -f -v -p 8080 -h /data'
sleep 0.5
show $BERTH ps
show $BERTH logs "$web"
id=$($BERTH inspect -f '{{.Id}}' "$web")
echo "  limits in the host's cgroup files for /berth/$id:"
for f in memory.max memory/memory.limit_in_bytes pids.max pids/pids.max cpu.max cpu/cpu.cfs_quota_us; do
	for root in /sys/fs/cgroup /sys/fs/cgroup/unified; do
		p="$root/$(dirname "$f" | sed 's/^\.$//')/berth/$id/$(basename "$f")"
		p=$(echo "$p" | sed 's#//*#/#g')
		[ -r "$p" ] && printf '    %-32s %s\n' "$(basename "$f")" "$(cat "$p")"
	done
done

bold "4. exec runs another process in the same container"
show $BERTH exec "$web" sh -c 'echo "pid 1 is: $(cat /proc/1/cmdline | tr "\0" " ")"; wget -qO- http://127.0.0.1:8080/; ls /data'
show $BERTH top "$web"
show $BERTH stats --no-stream "$web"

bold "5. Stop and remove; the volume outlives the container"
show $BERTH stop -t 1 "$web"
show $BERTH ps -a --filter name="$web"
show $BERTH rm "$web"
show $BERTH run --rm -v "$vol:/data" $image cat /data/index.html
show $BERTH volume ls

bold "What this shows"
cat <<'TXT'
   - No daemon: every command did its work and exited. A detached container has
     one small monitor process that writes its json-file log: berth starts the
     container, then becomes a lean program (about 0.6 MiB of its own memory)
     until the container exits, and berth again to record the exit.
   - Limits are written straight into the container's cgroup; the container has
     its own PID, mount, UTS, IPC and network namespaces, Docker's default
     capabilities and seccomp profile.
   - Named volumes keep data across containers.
TXT
