package runtime

import (
	"slices"
	"testing"
)

func TestFeaturesDerived(t *testing.T) {
	f := Features()
	if want := []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}; !slices.Equal(f.Hooks, want) {
		t.Errorf("hooks %v, want %v", f.Hooks, want)
	}
	if len(f.Linux.Namespaces) != 8 || len(f.Linux.Capabilities) == 0 || len(f.Linux.Seccomp.Archs) == 0 {
		t.Errorf("linux features %+v", f.Linux)
	}
}
