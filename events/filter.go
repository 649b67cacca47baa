package events

import (
	"fmt"
	"strings"
)

// Filter is the --filter of `berth events`: values of one key match when
// any matches, and every key given must match.
type Filter map[string][]string

var filterKeys = map[string]bool{"type": true, "event": true, "container": true, "image": true,
	"label": true, "volume": true, "network": true, "scope": true}

// ParseFilter reads KEY=VALUE words.
func ParseFilter(words []string) (Filter, error) {
	f := Filter{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || v == "" {
			return nil, fmt.Errorf("bad filter %q: want KEY=VALUE", w)
		}
		if !filterKeys[k] {
			return nil, fmt.Errorf("invalid filter %q", k)
		}
		if k == "type" {
			switch v {
			case TypeContainer, TypeImage, TypeVolume, TypeNetwork:
			default:
				return nil, fmt.Errorf("invalid filter 'type=%s': berth has container, image, volume and network events", v)
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// Match says whether e passes the filter.
func (f Filter) Match(e Event) bool {
	for k, vs := range f {
		ok := false
		for _, v := range vs {
			if f.match(k, v, e) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (f Filter) match(k, v string, e Event) bool {
	a := e.Actor.Attributes
	switch k {
	case "type":
		return e.Type == v
	case "scope":
		return e.Scope == v
	case "event":
		// exec_start: sh ... is matched by exec_start.
		action, _, _ := strings.Cut(e.Action, ":")
		return e.Action == v || action == v
	case "container":
		return e.Type == TypeContainer && (prefixOf(v, e.Actor.ID) || a["name"] == v) ||
			a["container"] != "" && (prefixOf(v, a["container"]))
	case "image":
		if e.Type == TypeImage {
			return sameImage(v, e.Actor.ID) || sameImage(v, a["name"])
		}
		return e.Type == TypeContainer && sameImage(v, a["image"])
	case "volume":
		return e.Type == TypeVolume && e.Actor.ID == v
	case "network":
		return e.Type == TypeNetwork && (e.Actor.ID == v || a["name"] == v || prefixOf(v, e.Actor.ID))
	case "label":
		lk, lv, hasValue := strings.Cut(v, "=")
		got, ok := a[lk]
		return ok && (!hasValue || got == lv)
	}
	return false
}

// prefixOf: v is an id or a unique-looking prefix of it.
func prefixOf(v, id string) bool { return v != "" && strings.HasPrefix(id, v) }

// sameImage compares image references loosely, as Docker does: with or
// without the :latest tag, the docker.io/library/ prefix, or an id
// prefix.
func sameImage(v, ref string) bool {
	if ref == "" {
		return false
	}
	if v == ref || prefixOf(strings.TrimPrefix(v, "sha256:"), strings.TrimPrefix(ref, "sha256:")) && len(v) >= 4 && !strings.ContainsAny(v, ":/") {
		return true
	}
	norm := func(s string) string {
		s = strings.TrimPrefix(s, "docker.io/")
		s = strings.TrimPrefix(s, "library/")
		if i := strings.LastIndexByte(s, ':'); i < 0 || strings.Contains(s[i:], "/") {
			s += ":latest"
		}
		return s
	}
	return norm(v) == norm(ref)
}
