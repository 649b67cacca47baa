package main

import (
	"syscall"

	proto "github.com/berth-project/berth/internal/monitorproto"
)

// serveFd is the socket berth starts the program with in serve mode.
const serveFd = 3

// serve is the program started ahead of its container (see
// monitorproto.ServeCommand): it forks the init when berth asks, then
// becomes the container's monitor with what berth sends once the
// container runs. It returns only on a failure; the end of berth's
// socket before the run message ends the program.
func serve(buf []byte) error {
	oob := make([]byte, syscall.CmsgSpace(32*4))
	child := 0
	for {
		// The run message may be longer than buf (a log's labels): its
		// length first, then all of it.
		msg := buf
		n, _, _, _, err := syscall.Recvmsg(serveFd, nil, nil, syscall.MSG_PEEK|syscall.MSG_TRUNC)
		if err == syscall.EINTR {
			continue
		}
		if err == nil && n > len(buf) {
			msg = make([]byte, n)
		}
		var oobn int
		if err == nil {
			n, oobn, _, _, err = syscall.Recvmsg(serveFd, msg, oob, syscall.MSG_CMSG_CLOEXEC)
		}
		if err == syscall.EINTR {
			continue
		}
		var fds []int
		if err == nil && oobn > 0 {
			fds, err = rights(oob[:oobn])
		}
		if err != nil || n == 0 {
			// berth gave up on the start, or died: the init must not
			// outlive it unwatched.
			abandon(child)
			syscall.Exit(0)
		}
		words := split(string(msg[:n]))
		switch words[0] {
		case proto.ServeFork:
			var pid int
			if child != 0 {
				err = usageError("one fork only")
			} else {
				pid, err = forkInit(words[1:], fds)
			}
			closeAll(fds)
			if err != nil {
				reply(proto.ServeError, err.Error())
				continue
			}
			child = pid
			reply(proto.ServePid, itoa(int64(pid)))
		case proto.ServeRun:
			args, env, err := runWords(words[1:], fds, child)
			if err != nil {
				closeAll(fds)
				reply(proto.ServeError, err.Error())
				continue
			}
			reply(proto.ServeOK, "")
			syscall.Close(serveFd)
			// The loop runs in the program started anew, as berth's
			// monitor would exec it: what serving allocated (the
			// fork's, the messages') is not kept for the container's
			// lifetime. The pid, and so the parent, stays.
			err = syscall.Exec("/proc/self/exe", args, env)
			complain(err)
			return run(args, buf)
		default:
			closeAll(fds)
			reply(proto.ServeError, "unknown message "+words[0])
		}
	}
}

// abandon kills and reaps the init forked for a start that failed.
func abandon(pid int) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			return
		}
	}
}

// forkInit forks the init as ServeFork's words say.
func forkInit(words []string, fds []int) (int, error) {
	if len(words) < 4 {
		return 0, usageError("fork: too few words")
	}
	path := words[0]
	flags, ok1 := atoi(words[1])
	cg, ok2 := atoi(words[2])
	nenv, ok3 := atoi(words[3])
	if !ok1 || !ok2 || !ok3 || nenv < 0 || 4+nenv >= len(words) || cg >= len(fds) {
		return 0, usageError("fork: bad words")
	}
	sys := &syscall.SysProcAttr{Cloneflags: uintptr(flags)}
	files := make([]uintptr, 0, len(fds))
	for i, fd := range fds {
		if i == cg {
			sys.UseCgroupFD, sys.CgroupFD = true, fd
			continue
		}
		files = append(files, uintptr(fd))
	}
	return syscall.ForkExec(path, words[4+nenv:], &syscall.ProcAttr{Env: words[4 : 4+nenv], Files: files, Sys: sys})
}

// runWords makes ServeRun's words the lean command line and environment
// the loop runs with: every "@N" replaced by the descriptor, kept open
// across exec, and the program's stderr in place.
func runWords(words []string, fds []int, child int) (args, env []string, err error) {
	nenv, ok := atoi(words[0])
	if !ok || nenv < 0 || 1+nenv >= len(words) {
		return nil, nil, usageError("run: bad words")
	}
	env = syscall.Environ()
	for _, kv := range words[1 : 1+nenv] {
		k, v, _ := cut(kv, '=')
		if v, err = withFds(v, fds); err != nil {
			return nil, nil, err
		}
		env = append(env, k+"="+v)
	}
	pid := 0
	for i, a := range words[1+nenv:] {
		if a == "--" {
			args = append(args, words[1+nenv+i:]...)
			break
		}
		k, v, found := cut(a, '=')
		if !found {
			args = append(args, a)
			continue
		}
		// A descriptor is a whole value: others (a label's JSON, a
		// journal field) are left as they are.
		if len(v) > 1 && v[0] == '@' {
			if v, err = withFds(v, fds); err != nil {
				return nil, nil, err
			}
		}
		switch k {
		case "stderr":
			fd, _ := atoi(v)
			if err := syscall.Dup3(fd, 2, 0); err != nil {
				return nil, nil, err
			}
			syscall.Close(fd)
			continue
		case "pid":
			pid, _ = atoi(v)
		}
		args = append(args, k+"="+v)
	}
	if child == 0 || pid != child {
		return nil, nil, usageError("run: pid= is not the init this program forked")
	}
	return args, env, nil
}

// withFds replaces each "@N" part of the comma list v by descriptor N of
// fds, which is kept open across exec.
func withFds(v string, fds []int) (string, error) {
	out := ""
	for first := true; ; first = false {
		part, rest, more := cut(v, ',')
		if len(part) > 1 && part[0] == '@' {
			i, ok := atoi(part[1:])
			if !ok || i < 0 || i >= len(fds) {
				return "", usageError("bad descriptor " + part)
			}
			if _, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fds[i]), syscall.F_SETFD, 0); e != 0 {
				return "", e
			}
			part = itoa(int64(fds[i]))
		}
		if !first {
			out += ","
		}
		out += part
		if !more {
			return out, nil
		}
		v = rest
	}
}

// rights are the descriptors of a message's SCM_RIGHTS.
func rights(oob []byte) ([]int, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		f, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			closeAll(fds)
			return nil, err
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// split cuts a message at its NULs.
func split(msg string) []string {
	n := 1
	for i := 0; i < len(msg); i++ {
		if msg[i] == 0 {
			n++
		}
	}
	words := make([]string, 0, n)
	for {
		w, rest, found := cut(msg, 0)
		words = append(words, w)
		if !found {
			return words
		}
		msg = rest
	}
}

// reply sends berth one message of kind and text.
func reply(kind, text string) {
	_, _ = syscall.Write(serveFd, []byte(kind+"\x00"+text))
}
