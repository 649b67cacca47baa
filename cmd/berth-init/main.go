// Command berth-init is the container side of berth on its own: the
// program berth starts in a container's new namespaces to set it up and
// exec the container's process (see package containerinit). It is berth's init
// code without the rest of berth: not the image and registry code, whose
// package initialisation would cost every container start, nor the
// runtime's parent side with its cgroup managers (and their eBPF library)
// and logging. berth embeds it (see internal/helperbin) and falls back to
// running itself as the init when it cannot.
package main

import (
	"fmt"
	"os"

	"github.com/berth-project/berth/containerinit"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != containerinit.InitArg {
		fmt.Fprintln(os.Stderr, "berth-init: this program is run by berth as a container's init, not by hand")
		os.Exit(125)
	}
	containerinit.Main() // never returns
}
