package image

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// DefaultDomain is the registry a name without a domain refers to.
const DefaultDomain = "docker.io"

// The patterns are compiled on first use: every berth process (and every
// container's init) links this package, and most never parse a name.
var (
	componentRE = lazyRE(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	tagRE       = lazyRE(`^[\w][\w.-]{0,127}$`)
	domainRE    = lazyRE(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$`)
)

func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// Reference is an image name normalized the way Docker does it:
// "busybox" is docker.io/library/busybox:latest.
type Reference struct {
	Domain string        // registry host[:port], e.g. docker.io
	Path   string        // repository path, e.g. library/busybox
	Tag    string        // tag, may be empty when Digest is set
	Digest digest.Digest // manifest digest, optional
}

// ParseReference normalizes s. A missing tag becomes "latest" unless a
// digest is given.
func ParseReference(s string) (Reference, error) {
	var r Reference
	orig := s
	if s == "" {
		return r, fmt.Errorf("invalid reference format: empty name")
	}
	if i := strings.Index(s, "@"); i >= 0 {
		d, err := digest.Parse(s[i+1:])
		if err != nil {
			return r, fmt.Errorf("invalid reference %q: bad digest: %w", orig, err)
		}
		r.Digest = d
		s = s[:i]
	}
	// A tag is after the last colon that comes after the last slash.
	if i := strings.LastIndex(s, ":"); i >= 0 && i > strings.LastIndex(s, "/") {
		r.Tag = s[i+1:]
		s = s[:i]
		if !tagRE().MatchString(r.Tag) {
			return r, fmt.Errorf("invalid reference %q: bad tag %q", orig, r.Tag)
		}
	}
	parts := strings.Split(s, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost" || strings.HasPrefix(parts[0], "[")) {
		r.Domain = parts[0]
		parts = parts[1:]
		if !domainRE().MatchString(r.Domain) {
			return r, fmt.Errorf("invalid reference %q: bad registry %q", orig, r.Domain)
		}
	} else {
		r.Domain = DefaultDomain
	}
	if r.Domain == "index.docker.io" || r.Domain == "registry-1.docker.io" {
		r.Domain = DefaultDomain
	}
	if r.Domain == DefaultDomain && len(parts) == 1 {
		parts = append([]string{"library"}, parts...)
	}
	for _, p := range parts {
		if !componentRE().MatchString(p) {
			return r, fmt.Errorf("invalid reference format %q: repository name must be lowercase and made of [a-z0-9._-] components", orig)
		}
	}
	r.Path = strings.Join(parts, "/")
	if len(r.Domain)+1+len(r.Path) > 255 {
		return r, fmt.Errorf("invalid reference %q: name too long", orig)
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// Name is the repository with its domain: docker.io/library/busybox.
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String is the full normalized reference.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Tagged is name:tag, or "" when there is no tag.
func (r Reference) Tagged() string {
	if r.Tag == "" {
		return ""
	}
	return r.Name() + ":" + r.Tag
}

// FamiliarName drops docker.io/ and library/ as docker does for display.
func FamiliarName(name string) string {
	if rest, ok := strings.CutPrefix(name, DefaultDomain+"/"); ok {
		if r2, ok := strings.CutPrefix(rest, "library/"); ok && !strings.Contains(r2, "/") {
			return r2
		}
		return rest
	}
	return name
}

// SplitTagged splits "name:tag" into its repository and tag.
func SplitTagged(s string) (repo, tag string) {
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return s[:i], s[i+1:]
	}
	return s, ""
}
