// Package probe defines the report the test probe (testdata/probe) prints
// from inside a container, so tests can decode it.
package probe

// Mount is one line of /proc/self/mountinfo, reduced to what tests check.
type Mount struct {
	Target  string `json:"target"`
	FSType  string `json:"fstype"`
	Source  string `json:"source"`
	Options string `json:"options"` // per-mount options, e.g. "ro,nosuid,nodev"
}

// Rlimit is one resource limit; ^uint64(0) means unlimited.
type Rlimit struct {
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
}

// FD is one open file descriptor of the probe.
type FD struct {
	FD     int    `json:"fd"`
	Target string `json:"target"` // readlink of /proc/self/fd/N
}

// Report is everything the probe saw.
type Report struct {
	Pid      int      `json:"pid"`
	PPid     int      `json:"ppid"`
	Hostname string   `json:"hostname"`
	Domain   string   `json:"domainname"`
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	EUID     int      `json:"euid"`
	EGID     int      `json:"egid"`
	Groups   []int    `json:"groups"`
	Umask    int      `json:"umask"`
	Cwd      string   `json:"cwd"`
	Env      []string `json:"env"`
	Args     []string `json:"args"`

	// Capability sets as hex masks from /proc/self/status.
	CapInh string `json:"cap_inh"`
	CapPrm string `json:"cap_prm"`
	CapEff string `json:"cap_eff"`
	CapBnd string `json:"cap_bnd"`
	CapAmb string `json:"cap_amb"`

	NoNewPrivs  int `json:"no_new_privs"` // from /proc/self/status NoNewPrivs
	Seccomp     int `json:"seccomp"`      // 0 none, 1 strict, 2 filter
	OOMScoreAdj int `json:"oom_score_adj"`

	// Namespaces maps "pid", "net", "mnt", "uts", "ipc", "user", "cgroup",
	// "time" to the link text of /proc/self/ns/<name>, e.g. "pid:[4026531836]".
	Namespaces map[string]string `json:"namespaces"`
	UIDMap     string            `json:"uid_map"`
	GIDMap     string            `json:"gid_map"`

	Mounts  []Mount           `json:"mounts"`
	Rlimits map[string]Rlimit `json:"rlimits"` // "nofile", "nproc", "core", ...
	FDs     []FD              `json:"fds"`

	// Cgroup maps file names relative to /sys/fs/cgroup (e.g. "memory.max",
	// "memory/memory.limit_in_bytes", "pids.max", "pids/pids.max",
	// "cpu.max", "cpu/cpu.cfs_quota_us") to their trimmed content, for the
	// limit files that exist.
	Cgroup     map[string]string `json:"cgroup"`
	CgroupFile string            `json:"proc_self_cgroup"` // /proc/self/cgroup

	// Writable reports, for a fixed list of sensitive paths (/proc/sys,
	// /proc/sysrq-trigger, /sys, /proc/kcore ...), whether opening them for
	// writing succeeded ("ok") or the error text.
	Writable map[string]string `json:"writable"`
	// Readable reports, for masked paths (/proc/kcore, /proc/keys,
	// /sys/firmware, /proc/acpi ...), what reading returned: "empty",
	// "data", or the error text.
	Readable map[string]string `json:"readable"`

	// Devices lists the names under /dev.
	Devices []string `json:"devices"`
	// Sysctls maps a few /proc/sys keys read back (e.g. "net.ipv4.ip_forward").
	Sysctls map[string]string `json:"sysctls"`
}
