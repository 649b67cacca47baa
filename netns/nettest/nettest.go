// Package nettest is what the network tests share: a TCP server in a
// namespace that answers "<name> <peer address>", and the client that
// asks it, so a test learns who answered and whom that server saw.
package nettest

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/netns/nsfile"
)

// Serve listens on addr inside the namespace file ns ("" for the test's
// own) and answers each connection with "<name> <peer address>" until
// the test ends.
func Serve(t *testing.T, ns, addr, name string) {
	t.Helper()
	var ln net.Listener
	listen := func() (err error) { ln, err = net.Listen("tcp", addr); return }
	var err error
	if ns == "" {
		err = listen()
	} else {
		err = nsfile.Do(ns, listen)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "%s %s", name, host)
			c.Close()
		}
	}()
}

// Ask connects from ns to addr and returns what the server said.
func Ask(ns, addr string) (string, error) {
	var out []byte
	err := nsfile.Do(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
			return err
		}
		out, err = io.ReadAll(c)
		return err
	})
	return string(out), err
}

// MustAsk checks that name answers on addr from ns and returns the
// address the server saw.
func MustAsk(t *testing.T, ns, addr, name string) string {
	t.Helper()
	got, err := Ask(ns, addr)
	if err != nil {
		t.Fatalf("connect to %s from %s: %v", addr, filepath.Base(ns), err)
	}
	if !strings.HasPrefix(got, name+" ") {
		t.Fatalf("connect to %s from %s: answered %q, want %s", addr, filepath.Base(ns), got, name)
	}
	return strings.TrimPrefix(got, name+" ")
}
