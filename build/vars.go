package build

import (
	"fmt"
	goruntime "runtime"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// vars are the variables a word is expanded with: ENV over ARG, as
// Docker does it.
type vars map[string]string

func (v vars) Get(k string) (string, bool) {
	val, ok := v[k]
	return val, ok
}

func (v vars) Keys() []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// envVars makes vars of args, then KEY=VALUE env on top.
func envVars(args map[string]string, env []string) vars {
	v := vars{}
	for k, val := range args {
		v[k] = val
	}
	for _, e := range env {
		k, val, _ := strings.Cut(e, "=")
		v[k] = val
	}
	return v
}

// expander expands one word as the Dockerfile's shell does.
func expander(lex *shell.Lex, v vars) func(string) (string, error) {
	return func(word string) (string, error) {
		out, _, err := lex.ProcessWord(word, v)
		return out, err
	}
}

// platformArgs are the predefined platform ARGs: berth builds for the
// host only.
func platformArgs() map[string]string {
	p := goruntime.GOOS + "/" + goruntime.GOARCH
	m := map[string]string{}
	for _, pre := range []string{"TARGET", "BUILD"} {
		m[pre+"PLATFORM"] = p
		m[pre+"OS"] = goruntime.GOOS
		m[pre+"ARCH"] = goruntime.GOARCH
		m[pre+"VARIANT"] = ""
	}
	return m
}

// setEnv replaces KEY's entry in env or appends one.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out := append([]string{}, env...)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(append([]string{}, env...), k+"="+v)
}

// hostPlatform is the only --platform a FROM may name.
func checkPlatform(p string) error {
	if p == "" {
		return nil
	}
	host := goruntime.GOOS + "/" + goruntime.GOARCH
	if p != host && p != goruntime.GOOS+"/"+goruntime.GOARCH+"/" {
		return fmt.Errorf("platform %q is not the host's (%s): berth builds for the host only", p, host)
	}
	return nil
}
