// Package projquota limits the disk space of a directory tree with the
// filesystem's project quotas (xfs mounted with pquota, ext4 with the
// project feature mounted with prjquota): the directory gets a project
// id that everything made below it inherits, and the project a hard
// block limit. It uses quotactl_fd, so it needs no block device path and
// no cgo.
package projquota

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel ABI (linux/quota.h, linux/fs.h); x/sys/unix lacks these.
const (
	qGetInfo   = 0x800005
	qGetQuota  = 0x800007
	qSetQuota  = 0x800008
	prjQuota   = 2
	qifBLimits = 1

	fsIocFsGetXattr    = 0x801c581f
	fsIocFsSetXattr    = 0x401c5820
	fsXflagProjInherit = 0x200

	// firstID is where berth's project ids start, clear of the small
	// ids administrators give by hand in /etc/projid.
	firstID = 1 << 24
)

type dqInfo struct {
	bgrace, igrace uint64
	flags, valid   uint32
}

type dqBlk struct {
	bhardlimit, bsoftlimit, curspace  uint64
	ihardlimit, isoftlimit, curinodes uint64
	btime, itime                      uint64
	valid                             uint32
	_                                 uint32
}

type fsxattr struct {
	xflags, extsize, nextents, projid, cowextsize uint32
	_                                             [8]byte
}

func qcmd(cmd int) int { return cmd<<8 | prjQuota }

func quotactl(f *os.File, cmd int, id uint32, addr unsafe.Pointer) error {
	_, _, e := unix.Syscall6(unix.SYS_QUOTACTL_FD, f.Fd(), uintptr(qcmd(cmd)), uintptr(id), uintptr(addr), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// ErrUnsupported is returned where the filesystem enforces no project
// quota.
var ErrUnsupported = errors.New("the filesystem enforces no project quotas (xfs mounted with pquota, or ext4 with the project feature mounted with prjquota)")

// Supported tells whether the filesystem of dir enforces project quotas.
func Supported(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	var info dqInfo
	if err := quotactl(f, qGetInfo, 0, unsafe.Pointer(&info)); err != nil {
		if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
			return ErrUnsupported
		}
		return fmt.Errorf("project quota of %s: %w", dir, err)
	}
	return nil
}

// ErrExempt is returned on ext4 when this process has CAP_SYS_RESOURCE:
// ext4 lets such a process (and overlayfs writes with its mounter's
// credentials) past every quota, so a limit would not hold.
var ErrExempt = errors.New("on ext4 a process with CAP_SYS_RESOURCE (berth, which mounts the container's root) is exempt from quotas; use xfs mounted with pquota")

// Enforceable is Supported, and on ext4 also checks that berth's writes
// are not exempt from the limit (see ErrExempt).
func Enforceable(dir string) error {
	if err := Supported(dir); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	if st.Type == unix.EXT4_SUPER_MAGIC && hasSysResource() {
		return ErrExempt
	}
	return nil
}

// hasSysResource tells whether this process's effective capabilities hold
// CAP_SYS_RESOURCE.
func hasSysResource() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true // unknown: assume the worst
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err != nil || n&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return true
}

// Limit gives the empty directory dir a project of its own, inherited by
// what is made below it, limited to bytes; key (the container id) picks
// the project id, moved past any project that is already in use.
func Limit(dir, key string, bytes uint64) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	h := fnv.New32a()
	h.Write([]byte(key))
	id := firstID + h.Sum32()%(1<<30)
	for i := 0; ; i++ {
		var q dqBlk
		if err := quotactl(f, qGetQuota, id, unsafe.Pointer(&q)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("project quota %d: %w", id, err)
		}
		if q.curspace == 0 && q.curinodes == 0 && q.bhardlimit == 0 && q.ihardlimit == 0 {
			break
		}
		if i > 1000 {
			return errors.New("no free project id")
		}
		id++
	}
	var x fsxattr
	if err := ioctl(f, fsIocFsGetXattr, &x); err != nil {
		return fmt.Errorf("project of %s: %w", dir, err)
	}
	x.projid, x.xflags = id, x.xflags|fsXflagProjInherit
	if err := ioctl(f, fsIocFsSetXattr, &x); err != nil {
		return fmt.Errorf("set the project of %s: %w", dir, err)
	}
	// The limit is in 1 KiB blocks.
	q := dqBlk{bhardlimit: (bytes + 1023) / 1024, valid: qifBLimits}
	if err := quotactl(f, qSetQuota, id, unsafe.Pointer(&q)); err != nil {
		return fmt.Errorf("set the project quota of %s: %w", dir, err)
	}
	return nil
}

// Clear drops the limit of dir's project, before dir is removed, so a
// later directory that gets the id starts unlimited.
func Clear(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	var x fsxattr
	if err := ioctl(f, fsIocFsGetXattr, &x); err != nil {
		return fmt.Errorf("project of %s: %w", dir, err)
	}
	if x.projid < firstID {
		return nil
	}
	q := dqBlk{valid: qifBLimits}
	if err := quotactl(f, qSetQuota, x.projid, unsafe.Pointer(&q)); err != nil {
		return fmt.Errorf("clear the project quota of %s: %w", dir, err)
	}
	return nil
}

func ioctl(f *os.File, req uintptr, x *fsxattr) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(unsafe.Pointer(x)))
	if e != 0 {
		return e
	}
	return nil
}
