// Package container is the engine of the container lifecycle: records
// under <data-root>/containers/<id>, unique names, the overlay root, create,
// start (foreground with its restart loop, or under a monitor), the restart
// policy and back-off, stop, kill, exec, commit, cp, export, diff, stats,
// top, prune, rm, and the one teardown every exit path runs. It gets the
// image store, volumes and the OCI runtime through small interfaces (Deps,
// see New); it does not parse command lines.
package container

import (
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config is the container's configuration in Docker's shape (what
// `inspect` shows as .Config), after the image's config was applied.
type Config struct {
	Hostname     string              `json:"Hostname"`
	Domainname   string              `json:"Domainname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	AttachStdout bool                `json:"AttachStdout"`
	AttachStderr bool                `json:"AttachStderr"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Image        string              `json:"Image"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	StopTimeout  *int                `json:"StopTimeout,omitempty"`
	// ExposedPorts are the image's EXPOSE, --expose and the -p ports
	// ("80/tcp"); MacAddress is --mac-address.
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	MacAddress   string              `json:"MacAddress,omitempty"`
	// Healthcheck is --health-* over the image's HEALTHCHECK, as Docker
	// merges them; HealthcheckOnFailureAction is podman's
	// --health-on-failure (none, kill, restart, stop).
	Healthcheck                *HealthConfig `json:"Healthcheck,omitempty"`
	HealthcheckOnFailureAction string        `json:"HealthcheckOnFailureAction,omitempty"`
}

// RestartPolicy is Docker's --restart.
type RestartPolicy struct {
	Name              string `json:"Name"` // "no", "always", "on-failure", "unless-stopped"
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// HostConfig is the host side of the configuration, in Docker's shape.
// Resources are also in the OCI spec; these fields are what inspect shows.
type HostConfig struct {
	Binds                []string          `json:"Binds"`
	NetworkMode          string            `json:"NetworkMode"`
	RestartPolicy        RestartPolicy     `json:"RestartPolicy"`
	AutoRemove           bool              `json:"AutoRemove"`
	Privileged           bool              `json:"Privileged"`
	ReadonlyRootfs       bool              `json:"ReadonlyRootfs"`
	CapAdd               []string          `json:"CapAdd"`
	CapDrop              []string          `json:"CapDrop"`
	SecurityOpt          []string          `json:"SecurityOpt"`
	Tmpfs                map[string]string `json:"Tmpfs,omitempty"`
	Init                 bool              `json:"Init"`
	CgroupParent         string            `json:"CgroupParent"`
	Memory               int64             `json:"Memory"`
	MemorySwap           int64             `json:"MemorySwap"`
	MemoryReservation    int64             `json:"MemoryReservation"`
	NanoCpus             int64             `json:"NanoCpus"`
	CpuShares            int64             `json:"CpuShares"`
	CpusetCpus           string            `json:"CpusetCpus"`
	PidsLimit            *int64            `json:"PidsLimit"`
	Ulimits              []Ulimit          `json:"Ulimits"`
	BlkioDeviceReadBps   []ThrottleDevice  `json:"BlkioDeviceReadBps"`
	BlkioDeviceWriteBps  []ThrottleDevice  `json:"BlkioDeviceWriteBps"`
	BlkioDeviceReadIOps  []ThrottleDevice  `json:"BlkioDeviceReadIOps"`
	BlkioDeviceWriteIOps []ThrottleDevice  `json:"BlkioDeviceWriteIOps"`
	// PortBindings are -p by container port ("80/tcp"), ranges expanded;
	// PublishAllPorts is -P.
	PortBindings    map[string][]PortBinding `json:"PortBindings"`
	PublishAllPorts bool                     `json:"PublishAllPorts"`
	Dns             []string                 `json:"Dns"`
	DnsSearch       []string                 `json:"DnsSearch"`
	DnsOptions      []string                 `json:"DnsOptions"`
	ExtraHosts      []string                 `json:"ExtraHosts"`
	// Berth's own: --sdnotify (container, conmon, ignore), --pid-file.
	Sdnotify string `json:"Sdnotify,omitempty"`
	PidFile  string `json:"PidFile,omitempty"`
	// Cgroups is --cgroups: enabled (/berth/<id> or --cgroup-parent) or
	// split (beside berth, under the caller's own cgroup) or disabled (none:
	// the container stays in its starter's cgroup).
	Cgroups string `json:"Cgroups,omitempty"`

	// Docker's fields for the rest of what run takes; inspect shows them.
	ShmSize        int64             `json:"ShmSize"`
	Sysctls        map[string]string `json:"Sysctls,omitempty"`
	PidMode        string            `json:"PidMode"`
	IpcMode        string            `json:"IpcMode"`
	UTSMode        string            `json:"UTSMode"`
	GroupAdd       []string          `json:"GroupAdd"`
	OomScoreAdj    int               `json:"OomScoreAdj"`
	OomKillDisable *bool             `json:"OomKillDisable"`
	CpusetMems     string            `json:"CpusetMems"`
	BlkioWeight    uint16            `json:"BlkioWeight"`
	LogConfig      LogConfig         `json:"LogConfig"`
	Runtime        string            `json:"Runtime"`

	// Run flags of issue 19: --device, --device-cgroup-rule, --cidfile.
	Devices           []DeviceMapping `json:"Devices"`
	DeviceCgroupRules []string        `json:"DeviceCgroupRules"`
	ContainerIDFile   string          `json:"ContainerIDFile"`
	// --cpu-period, --cpu-quota, --cpu-rt-runtime, --memory-swappiness
	// (nil: the kernel's), --blkio-weight-device.
	CpuPeriod          int64          `json:"CpuPeriod"`
	CpuQuota           int64          `json:"CpuQuota"`
	CpuRealtimeRuntime int64          `json:"CpuRealtimeRuntime"`
	MemorySwappiness   *int64         `json:"MemorySwappiness"`
	BlkioWeightDevice  []WeightDevice `json:"BlkioWeightDevice"`
	VolumesFrom        []string       `json:"VolumesFrom"`
	// --cgroupns (private or host), --userns (host; inspect shows
	// "private" for a container with id maps).
	CgroupnsMode string `json:"CgroupnsMode"`
	UsernsMode   string `json:"UsernsMode"`
	// IDMappings are the id maps, as podman's inspect shows them; they
	// live in the spec and are filled in by inspect only.
	IDMappings *IDMappings `json:"IDMappings,omitempty"`
	// StorageOpt is --storage-opt: "size" (bytes), the limit of the
	// container's own files, a project quota on its directory.
	StorageOpt map[string]string `json:"StorageOpt"`
}

// IDMappings are a container's user namespace maps, each
// CONTAINER_ID:HOST_ID:AMOUNT as --uidmap takes it.
type IDMappings struct {
	UIDMap []string `json:"UidMap"`
	GIDMap []string `json:"GidMap"`
}

// WeightDevice is one --blkio-weight-device.
type WeightDevice struct {
	Path   string `json:"Path"`
	Weight uint16 `json:"Weight"`
}

// DeviceMapping is one --device, as Docker shows it.
type DeviceMapping struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"`
}

// LogConfig is where a container's output goes, as Docker shows it.
type LogConfig struct {
	Type   string            `json:"Type"`
	Config map[string]string `json:"Config"`
}

// PortBinding is one host side of a published port; HostPort "" is any
// free port.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// EndpointIPAMConfig is --ip and --ip6.
type EndpointIPAMConfig struct {
	IPv4Address string `json:"IPv4Address,omitempty"`
	IPv6Address string `json:"IPv6Address,omitempty"`
}

// EndpointSettings is a container on one network, in Docker's shape: what
// was asked (IPAMConfig, Aliases, MacAddress) in NetworkingConfig, and
// also what it got in NetworkSettings.
type EndpointSettings struct {
	IPAMConfig          *EndpointIPAMConfig `json:"IPAMConfig"`
	Aliases             []string            `json:"Aliases"`
	MacAddress          string              `json:"MacAddress"`
	NetworkID           string              `json:"NetworkID"`
	EndpointID          string              `json:"EndpointID"`
	Gateway             string              `json:"Gateway"`
	IPAddress           string              `json:"IPAddress"`
	IPPrefixLen         int                 `json:"IPPrefixLen"`
	IPv6Gateway         string              `json:"IPv6Gateway"`
	GlobalIPv6Address   string              `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int                 `json:"GlobalIPv6PrefixLen"`
	DNSNames            []string            `json:"DNSNames"`
}

// NetworkingConfig is the networks a container asked for, by name.
type NetworkingConfig struct {
	EndpointsConfig map[string]*EndpointSettings `json:"EndpointsConfig"`
}

// NetworkSettings is what a container's last start got, as inspect shows
// it; the top-level address fields are those of its first network.
type NetworkSettings struct {
	Bridge              string                       `json:"Bridge"`
	SandboxID           string                       `json:"SandboxID"`
	SandboxKey          string                       `json:"SandboxKey"`
	Ports               map[string][]PortBinding     `json:"Ports"`
	Gateway             string                       `json:"Gateway"`
	IPAddress           string                       `json:"IPAddress"`
	IPPrefixLen         int                          `json:"IPPrefixLen"`
	IPv6Gateway         string                       `json:"IPv6Gateway"`
	GlobalIPv6Address   string                       `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int                          `json:"GlobalIPv6PrefixLen"`
	MacAddress          string                       `json:"MacAddress"`
	Networks            map[string]*EndpointSettings `json:"Networks"`
}

// Ulimit is one --ulimit.
type Ulimit struct {
	Name string `json:"Name"`
	Soft int64  `json:"Soft"`
	Hard int64  `json:"Hard"`
}

// ThrottleDevice is one --device-read-bps and friends.
type ThrottleDevice struct {
	Path string `json:"Path"`
	Rate uint64 `json:"Rate"`
}

// MountPoint is one volume, bind or tmpfs mount, as inspect shows it.
type MountPoint struct {
	Type        string `json:"Type"` // bind, volume, tmpfs
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
	// Anonymous volumes (from the image's VOLUME or -v /path) are removed
	// by rm -v; Fill asks for the image's content at Destination to be
	// copied into a volume that is new and empty, as Docker does.
	Anonymous bool `json:"Anonymous,omitempty"`
	Fill      bool `json:"Fill,omitempty"`
}

// State is the container's state as inspect shows it.
type State struct {
	Status     string    `json:"Status"` // created, running, paused, restarting, removing, exited, dead
	Running    bool      `json:"Running"`
	Paused     bool      `json:"Paused"`
	Restarting bool      `json:"Restarting"`
	OOMKilled  bool      `json:"OOMKilled"`
	Dead       bool      `json:"Dead"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
	// MonitorPid is the pid of the monitor of a detached container.
	MonitorPid int `json:"MonitorPid,omitempty"`
	// Health is kept in a file of its own beside the record (see
	// health.go): inspect and ps fill it in, the record never holds it.
	Health *Health `json:"Health,omitempty"`
}

// Record is everything berth keeps about one container, in
// <data-root>/containers/<id>/container.json.
type Record struct {
	ID           string       `json:"Id"`
	Name         string       `json:"Name"` // without Docker's leading "/"
	Created      time.Time    `json:"Created"`
	Image        string       `json:"Image"` // image ID (sha256:...)
	ImageName    string       `json:"ImageName"`
	Config       Config       `json:"Config"`
	HostConfig   HostConfig   `json:"HostConfig"`
	Mounts       []MountPoint `json:"Mounts"`
	State        State        `json:"State"`
	RestartCount int          `json:"RestartCount"`
	// ManuallyStopped is set by stop/kill so the restart policy leaves the
	// container alone (unless-stopped and always after a stop).
	ManuallyStopped bool `json:"ManuallyStopped,omitempty"`
	// HealthRestart is set by --health-on-failure=restart before it
	// stops the container: its owner restarts it whatever the policy.
	HealthRestart bool `json:"HealthRestart,omitempty"`
	// PidStart and MonitorStart are the start times (field 22 of
	// /proc/PID/stat) of State.Pid and State.MonitorPid, so a reused pid is
	// never mistaken for them.
	PidStart     uint64 `json:"PidStart,omitempty"`
	MonitorStart uint64 `json:"MonitorStart,omitempty"`
	// NetworkingConfig is what --network, --network-alias, --ip, --ip6
	// and --mac-address asked for, per network (bridge modes only).
	NetworkingConfig *NetworkingConfig `json:"NetworkingConfig,omitempty"`
	// NetworkSettings is what the last start got (kept after it exits,
	// so a restart asks for the same address).
	NetworkSettings *NetworkSettings `json:"NetworkSettings"`
	// LastIPs are the addresses the container last had, by network: the
	// next start asks for them again.
	LastIPs map[string]string `json:"LastIPs,omitempty"`
	// LastIPs6 are the same for the IPv6 addresses on dual-stack
	// networks.
	LastIPs6 map[string]string `json:"LastIPs6,omitempty"`
	// CreateCommand is the command line that created the container
	// (berth's absolute path first, flags before the image as berth
	// parsed them), as podman keeps it: generate systemd --new runs it
	// again.
	CreateCommand []string `json:"CreateCommand,omitempty"`
	// Spec is the OCI spec the runtime gets; root.path is filled in at
	// start with the mounted overlay.
	Spec *specs.Spec `json:"Spec"`
}
