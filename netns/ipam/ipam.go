// Package ipam hands out the addresses of a network's subnet (IPv4 or
// IPv6; a dual-stack network has one pool per family) to containers. The leases of one network live in one JSON file, changed
// only under that network's flock and replaced atomically, so concurrent
// berth processes never hand out the same address and a crash leaves
// the old file or the new one.
package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"

	"github.com/berth-project/berth/internal/atomicfile"
	"github.com/berth-project/berth/internal/lockfile"
	"golang.org/x/sys/unix"
)

// ErrExhausted is returned when a subnet has no free address left.
var ErrExhausted = errors.New("no free address in the subnet")

// Pool is the address pool of one network. Dir holds the files of all
// pools (one per Name).
type Pool struct {
	Dir     string
	Name    string
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Range, when valid, is the part of the subnet addresses are
	// handed out from when none is asked for (--ip-range).
	Range netip.Prefix
}

// Lease is one container's address.
type Lease struct {
	ID   string     `json:"id"`
	Addr netip.Addr `json:"addr"`
}

type file struct {
	Subnet string  `json:"subnet"`
	Leases []Lease `json:"leases"`
}

func (p *Pool) check() error {
	switch {
	case !p.Subnet.IsValid():
		return fmt.Errorf("network %s: no subnet", p.Name)
	case p.Subnet.Addr().Is4() && p.Subnet.Bits() > 30:
		return fmt.Errorf("network %s: subnet %v: want an IPv4 subnet of /30 or larger", p.Name, p.Subnet)
	case p.Subnet.Addr().Is6() && (p.Subnet.Bits() > 126 || p.Subnet.Addr().Is4In6()):
		return fmt.Errorf("network %s: subnet %v: want an IPv6 subnet of /126 or larger", p.Name, p.Subnet)
	}
	if p.Subnet != p.Subnet.Masked() {
		return fmt.Errorf("network %s: subnet %v has host bits set", p.Name, p.Subnet)
	}
	if p.Gateway.IsValid() && !p.usable(p.Gateway) {
		return fmt.Errorf("network %s: gateway %v is not a host address of %v", p.Name, p.Gateway, p.Subnet)
	}
	if p.Name == "" || filepath.Base(p.Name) != p.Name || p.Name[0] == '.' {
		return fmt.Errorf("network name %q: not a plain name", p.Name)
	}
	return nil
}

// usable says whether a is a host address of the subnet: not the
// network address (in IPv6 the subnet-router anycast address), nor in
// IPv4 the broadcast address.
func (p *Pool) usable(a netip.Addr) bool {
	if !p.Subnet.Contains(a) || a == p.Subnet.Addr() {
		return false
	}
	return a.Is6() || a != broadcast(p.Subnet)
}

func broadcast(s netip.Prefix) netip.Addr {
	b := s.Addr().As4()
	host := uint32(1)<<(32-s.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// update runs fn on the pool's leases under the network's lock and
// writes them back when fn says so.
func (p *Pool) update(fn func(f *file) (bool, error)) error {
	if err := p.check(); err != nil {
		return err
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return fmt.Errorf("ipam dir: %w", err)
	}
	lk, err := lockfile.Open(filepath.Join(p.Dir, p.Name+".lock"), unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer lk.Close()
	path := filepath.Join(p.Dir, p.Name+".json")
	var f file
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		f.Subnet = p.Subnet.String()
	case err != nil:
		return fmt.Errorf("read leases: %w", err)
	default:
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("leases of network %s: %w", p.Name, err)
		}
		if f.Subnet != p.Subnet.String() {
			return fmt.Errorf("network %s: leases are for subnet %s, not %v", p.Name, f.Subnet, p.Subnet)
		}
	}
	changed, err := fn(&f)
	if err != nil || !changed {
		return err
	}
	sort.Slice(f.Leases, func(i, j int) bool { return f.Leases[i].Addr.Less(f.Leases[j].Addr) })
	out, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(out, '\n'), 0o600)
}

// Allocate gives id an address and records it. An id that holds a lease
// keeps it (a stopped container restarting). Otherwise want, when valid,
// is the one address accepted: it must be a free host address of the
// subnet. Else prefer, when valid and free (the address the container
// had before), is taken; else the lowest free address.
func (p *Pool) Allocate(id string, want, prefer netip.Addr) (netip.Addr, error) {
	var got netip.Addr
	err := p.update(func(f *file) (bool, error) {
		used := map[netip.Addr]string{}
		for _, l := range f.Leases {
			if l.ID == id {
				if want.IsValid() && want != l.Addr {
					return false, fmt.Errorf("container %s already has address %v on network %s", id, l.Addr, p.Name)
				}
				got = l.Addr
				return false, nil
			}
			used[l.Addr] = l.ID
		}
		free := func(a netip.Addr) bool {
			_, taken := used[a]
			return p.usable(a) && a != p.Gateway && !taken
		}
		switch {
		case want.IsValid():
			if !p.usable(want) || want == p.Gateway {
				return false, fmt.Errorf("address %v is not a free host address of %v (network %s)", want, p.Subnet, p.Name)
			}
			if holder, taken := used[want]; taken {
				return false, fmt.Errorf("address %v is already in use by %s on network %s", want, holder, p.Name)
			}
			got = want
		case prefer.IsValid() && free(prefer):
			got = prefer
		default:
			from := p.Subnet
			if p.Range.IsValid() {
				from = p.Range.Masked()
			}
			for a := from.Addr(); from.Contains(a); a = a.Next() {
				if free(a) {
					got = a
					break
				}
			}
			if !got.IsValid() {
				return false, fmt.Errorf("network %s: %w", p.Name, ErrExhausted)
			}
		}
		f.Leases = append(f.Leases, Lease{ID: id, Addr: got})
		return true, nil
	})
	return got, err
}

// Release drops id's lease, if any.
func (p *Pool) Release(id string) error {
	return p.update(func(f *file) (bool, error) {
		for i, l := range f.Leases {
			if l.ID == id {
				f.Leases = append(f.Leases[:i], f.Leases[i+1:]...)
				return true, nil
			}
		}
		return false, nil
	})
}

// Reclaim drops the leases whose holder gone says no longer exists (a
// container removed while berth was killed) and returns them.
// gone runs under the network's lock: it must not call the pool.
func (p *Pool) Reclaim(gone func(id string) bool) ([]Lease, error) {
	var dropped []Lease
	err := p.update(func(f *file) (bool, error) {
		kept := f.Leases[:0]
		for _, l := range f.Leases {
			if gone(l.ID) {
				dropped = append(dropped, l)
			} else {
				kept = append(kept, l)
			}
		}
		f.Leases = kept
		return len(dropped) > 0, nil
	})
	return dropped, err
}

// Leases lists the pool's leases in address order.
func (p *Pool) Leases() ([]Lease, error) {
	var out []Lease
	err := p.update(func(f *file) (bool, error) {
		out = append(out, f.Leases...)
		return false, nil
	})
	return out, err
}

// Remove deletes the pool's files (the network is being removed).
func (p *Pool) Remove() error {
	for _, suffix := range []string{".json", ".lock"} {
		if err := os.Remove(filepath.Join(p.Dir, p.Name+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove leases of %s: %w", p.Name, err)
		}
	}
	return nil
}
