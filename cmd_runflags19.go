package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/runconfig"
	"github.com/berth-project/berth/runtime"
)

// runFlags19 are the run/create flags added by issue 19, kept apart from
// runConfigFlags.
func runFlags19() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "device", Usage: "add a host device: HOST[:CONTAINER][:PERMISSIONS] (permissions: some of r, w, m; default rwm)"},
		&cli.StringSliceFlag{Name: "device-cgroup-rule", Usage: "allow devices in the cgroup: 'c|b|a MAJOR:MINOR rwm' (* for any number)"},
		&cli.StringFlag{Name: "cidfile", Usage: "write the container's ID to this file (which must not exist)"},
		&cli.Int64Flag{Name: "cpu-period", Usage: "CFS period in microseconds (1000-1000000)"},
		&cli.Int64Flag{Name: "cpu-quota", Usage: "CFS quota in microseconds per period (-1 unlimited)"},
		&cli.Int64Flag{Name: "cpu-rt-runtime", Usage: "real-time CPU runtime in microseconds per second (cgroup v1 kernels with real-time group scheduling)"},
		&cli.Int64Flag{Name: "memory-swappiness", DefaultText: "-1", Usage: "swappiness 0-100, -1 the kernel's (cgroup v1; ignored with a warning on v2)"},
		&cli.StringSliceFlag{Name: "volumes-from", Usage: "mount the volumes and bind mounts of a container: CONTAINER[:ro|rw]"},
		&cli.StringFlag{Name: "cgroupns", Usage: "cgroup namespace: private (default) or host"},
		&cli.StringFlag{Name: "userns", Usage: "user namespace: host, or CONTAINER_ID:HOST_ID:AMOUNT[,...] for both id maps"},
		&cli.StringSliceFlag{Name: "uidmap", Usage: "a user namespace of its own with this uid map: CONTAINER_ID:HOST_ID:AMOUNT (repeatable; also the gid map without --gidmap)"},
		&cli.StringSliceFlag{Name: "gidmap", Usage: "the gid map of the user namespace: CONTAINER_ID:HOST_ID:AMOUNT (repeatable; also the uid map without --uidmap)"},
		&cli.BoolFlag{Name: "sig-proxy", Value: true, Usage: "pass the signals berth gets to the container (foreground, without -t)"},
		&cli.StringSliceFlag{Name: "attach", Aliases: []string{"a"}, Usage: "attach only these streams: stdin, stdout, stderr (the others are discarded)"},
		&cli.StringSliceFlag{Name: "storage-opt", Usage: "size=SIZE: limit the container's own files (needs project quotas on the data root: xfs pquota, ext4 project + prjquota)"},
		&cli.StringFlag{Name: "pull", Usage: "pull the image: missing (default: when it is not here), always or never"},
		&cli.StringFlag{Name: "platform", Usage: "os/arch[/variant] of the image: only this host's platform is accepted"},
		&cli.StringSliceFlag{Name: "blkio-weight-device", Usage: "block IO weight of a device: DEVICE:WEIGHT (10-1000)"},
	}
}

// readRunFlags19 copies runFlags19's values into f.
func readRunFlags19(c *cli.Context, f *runconfig.Flags) {
	f.Device = c.StringSlice("device")
	f.DeviceCgroupRule = c.StringSlice("device-cgroup-rule")
	f.CIDFile = c.String("cidfile")
	f.CPUPeriod, f.CPUQuota, f.CPURtRuntime = c.Int64("cpu-period"), c.Int64("cpu-quota"), c.Int64("cpu-rt-runtime")
	f.MemorySwappiness = given(c, "memory-swappiness", c.Int64)
	f.BlkioWeightDevice = c.StringSlice("blkio-weight-device")
	f.Pull, f.Platform = c.String("pull"), c.String("platform")
	f.VolumesFrom = c.StringSlice("volumes-from")
	f.Cgroupns, f.Userns = c.String("cgroupns"), c.String("userns")
	f.UIDMap, f.GIDMap = c.StringSlice("uidmap"), c.StringSlice("gidmap")
	f.SigProxy = given(c, "sig-proxy", c.Bool)
	f.Attach = c.StringSlice("attach")
	f.StorageOpt = c.StringSlice("storage-opt")
}

// cidFile is run/create's --cidfile: made before the container (so two
// runs cannot share one), the id written once the container exists, and
// removed when the run fails before that, as Docker does.
type cidFile struct {
	path    string
	f       *os.File
	written bool
}

func createCIDFile(path string) (*cidFile, error) {
	if path == "" {
		return &cidFile{}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("--cidfile: container ID file found, make sure the other container isn't running or delete %s", path)
	}
	if err != nil {
		return nil, fmt.Errorf("--cidfile: %w", err)
	}
	return &cidFile{path: path, f: f}, nil
}

func (c *cidFile) write(id string) error {
	if c.f == nil {
		return nil
	}
	if _, err := c.f.WriteString(id); err != nil {
		return fmt.Errorf("--cidfile: write %s: %w", c.path, err)
	}
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("--cidfile: write %s: %w", c.path, err)
	}
	c.f, c.written = nil, true
	return nil
}

// closeUnwritten removes the file unless the id was written.
func (c *cidFile) closeUnwritten() {
	if c.f == nil || c.written {
		return
	}
	c.f.Close()
	if err := os.Remove(c.path); err != nil {
		logrus.Warnf("--cidfile: %v", err)
	}
}

// runImage finds or pulls run's image as --pull says.
func runImage(images *image.Store, o *runconfig.Options) (*image.Image, error) {
	ref := o.Config.Image
	switch o.Pull {
	case "never":
		img, err := images.Resolve(ref)
		if errors.Is(err, image.ErrNotFound) {
			return nil, fmt.Errorf("no such image: %s (--pull never)", ref)
		}
		return img, err
	case "always":
		ctx, stop := signalContext()
		defer stop()
		return images.Pull(ctx, ref, image.PullOptions{Platform: o.Platform, RemoteOptions: image.RemoteOptions{Progress: os.Stderr}})
	}
	if o.Platform == "" {
		return resolveOrPull(images, ref)
	}
	img, err := images.Resolve(ref)
	if err == nil || !errors.Is(err, image.ErrNotFound) {
		return img, err
	}
	fmt.Fprintf(os.Stderr, "Unable to find image '%s' locally\n", ref)
	ctx, stop := signalContext()
	defer stop()
	return images.Pull(ctx, ref, image.PullOptions{Platform: o.Platform})
}

// inheritVolumes turns --volumes-from into -v values for runconfig: each
// volume and bind mount of the container (not its tmpfs mounts, as
// Docker), read-write as it has it unless :ro or :rw says otherwise.
func inheritVolumes(s *container.Store, o *runconfig.Options) error {
	for _, v := range o.Host.VolumesFrom {
		ref, mode, _ := strings.Cut(v, ":")
		r, err := s.Find(ref)
		if err != nil {
			return fmt.Errorf("--volumes-from %s: %w", ref, err)
		}
		for _, m := range r.Mounts {
			src := m.Source
			switch m.Type {
			case "volume":
				src = m.Name
			case "bind":
			default:
				continue
			}
			rw := m.RW
			if mode != "" {
				rw = mode == "rw"
			}
			opts := "ro"
			if rw {
				opts = "rw"
			}
			if m.Type == "bind" && m.Propagation != "" {
				opts += "," + m.Propagation
			}
			o.InheritedVolumes = append(o.InheritedVolumes, src+":"+m.Destination+":"+opts)
		}
	}
	return nil
}

// attachStreams applies -a to a foreground run's stdio: a stream not
// attached is discarded (a foreground run keeps no log to put it in).
func attachStreams(stdio *runtime.IO, c *container.Config) (closeNull func(), err error) {
	if c.AttachStdin && c.AttachStdout && c.AttachStderr {
		return func() {}, nil
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if !c.AttachStdin {
		stdio.Stdin = null
	}
	if !c.AttachStdout {
		stdio.Stdout = null
	}
	if !c.AttachStderr {
		stdio.Stderr = null
	}
	return func() { null.Close() }, nil
}

// proxied is the signals a foreground run passes on: none with
// --sig-proxy=false. berth still catches them: it is the container's
// parent and stays with it (they end the restarts between runs).
func proxied(sigs chan os.Signal, noProxy bool) chan os.Signal {
	if noProxy {
		return make(chan os.Signal)
	}
	return sigs
}
