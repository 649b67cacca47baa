// Command gofloor is the bench's yardstick for the lean monitor's memory:
// a Go program that does nothing but wait in epoll_wait, set up as the
// monitor is (its first thread locked, its text trimmed, GOMAXPROCS=1
// from the bench). Its USS is what any Go program of this toolchain costs
// on this kernel, however little it does. It prints "ready" once it
// waits, and runs until it is killed.
package main

import (
	"runtime"
	"syscall"

	"github.com/berth-project/berth/internal/leanproc"
)

func init() { runtime.LockOSThread() }

func main() {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		_, _ = syscall.Write(2, []byte("gofloor: "+err.Error()+"\n"))
		syscall.Exit(1)
	}
	leanproc.TrimText(make([]byte, 32*1024))
	_, _ = syscall.Write(1, []byte("ready\n"))
	var evs [1]syscall.EpollEvent
	for {
		_, _ = syscall.EpollWait(ep, evs[:], -1)
	}
}
