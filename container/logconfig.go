package container

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/berth-project/berth/internal/monitorcore"
	"github.com/berth-project/berth/internal/units"
)

// The log drivers berth has (--log-driver).
const (
	LogJSONFile = "json-file"
	LogJournald = "journald"
	LogNone     = "none"
)

// DefaultLogConfig is berth's default log: a json-file without a size
// limit, as Docker's (README: "Logs").
func DefaultLogConfig() LogConfig {
	return LogConfig{Type: LogJSONFile, Config: map[string]string{}}
}

// logOpts are the --log-opt keys each driver takes.
var logOpts = map[string][]string{
	LogJSONFile: {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
	LogJournald: {"labels", "labels-regex", "env", "env-regex", "tag"},
	LogNone:     {},
}

// LogLimits are a json-file's rotation settings.
type LogLimits struct {
	MaxSize  int64 // 0: no limit
	MaxFile  int
	Compress bool
}

// CheckLogConfig says what is wrong with a --log-driver and its
// --log-opt values, in Docker's terms.
func CheckLogConfig(lc LogConfig) error {
	keys, ok := logOpts[lc.Type]
	if !ok {
		if lc.Type == "k8s-file" {
			return fmt.Errorf("--log-driver k8s-file: podman's CRI-format log is not one berth writes; use json-file (Docker's format, which berth logs reads)")
		}
		return fmt.Errorf("--log-driver %q: not supported (berth has json-file, journald and none)", lc.Type)
	}
	for k := range lc.Config {
		found := false
		for _, want := range keys {
			found = found || k == want
		}
		if !found {
			return fmt.Errorf("--log-opt: unknown log opt '%s' for %s log driver", k, lc.Type)
		}
	}
	if _, err := lc.Limits(); err != nil {
		return err
	}
	for _, k := range []string{"labels-regex", "env-regex"} {
		if v, ok := lc.Config[k]; ok {
			if _, err := regexp.Compile(v); err != nil {
				return fmt.Errorf("--log-opt %s: %w", k, err)
			}
		}
	}
	if v, ok := lc.Config["tag"]; ok {
		if _, err := template.New("tag").Option("missingkey=error").Parse(v); err != nil {
			return fmt.Errorf("--log-opt tag: %w", err)
		}
		if _, err := logTag(v, &Record{ID: strings.Repeat("0", 64)}); err != nil {
			return fmt.Errorf("--log-opt tag: %w", err)
		}
	}
	return nil
}

// Limits reads max-size, max-file and compress as Docker's json-file
// does: decimal sizes, max-file at least 1 (the default), compress only
// with something to compress.
func (lc LogConfig) Limits() (LogLimits, error) {
	l := LogLimits{MaxFile: 1}
	if v, ok := lc.Config["max-size"]; ok {
		n, err := units.ParseDecimalSize(v)
		if err != nil {
			return l, fmt.Errorf("--log-opt max-size: %w", err)
		}
		if n <= 0 {
			return l, fmt.Errorf("--log-opt max-size: must be a positive number, not %q", v)
		}
		l.MaxSize = n
	}
	if v, ok := lc.Config["max-file"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return l, fmt.Errorf("--log-opt max-file: invalid number %q", v)
		}
		if n < 1 {
			return l, fmt.Errorf("--log-opt max-file: cannot be less than 1")
		}
		l.MaxFile = n
	}
	if v, ok := lc.Config["compress"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return l, fmt.Errorf("--log-opt compress: invalid boolean %q", v)
		}
		if b && (l.MaxFile < 2 || l.MaxSize == 0) {
			return l, fmt.Errorf("--log-opt compress: cannot be true when max-file is less than 2 or max-size is not set")
		}
		l.Compress = b
	}
	return l, nil
}

// logTag expands a tag template with the container's names, as Docker's
// log tags do ({{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageName}},
// {{.ImageID}}, {{.ImageFullID}}, {{.DaemonName}}).
func logTag(tmpl string, r *Record) (string, error) {
	t, err := template.New("tag").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", err
	}
	image := strings.TrimPrefix(r.Image, "sha256:")
	data := struct{ ID, FullID, Name, ImageName, ImageID, ImageFullID, DaemonName string }{
		ID: short(r.ID), FullID: r.ID, Name: r.Name, ImageName: r.Config.Image, ImageID: short(image),
		ImageFullID: r.Image, DaemonName: "berth"}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// logAttrs are the attributes --log-opt labels=, labels-regex=, env= and
// env-regex= pick from the container's labels and environment.
func logAttrs(lc LogConfig, r *Record) map[string]string {
	attrs := map[string]string{}
	pick := func(keys, pattern string, vals map[string]string) {
		for _, k := range strings.Split(keys, ",") {
			if v, ok := vals[k]; ok && k != "" {
				attrs[k] = v
			}
		}
		if pattern == "" {
			return
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return // refused at create
		}
		for k, v := range vals {
			if re.MatchString(k) {
				attrs[k] = v
			}
		}
	}
	pick(lc.Config["labels"], lc.Config["labels-regex"], r.Config.Labels)
	env := map[string]string{}
	for _, e := range r.Config.Env {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	pick(lc.Config["env"], lc.Config["env-regex"], env)
	return attrs
}

// journalKey makes an attribute's name a journal field's: upper case,
// letters, digits and underscores, not starting with an underscore.
func journalKey(k string) string {
	b := []byte(strings.ToUpper(k))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return strings.TrimLeft(string(b), "_")
}

// logging is how the monitor logs r's output, for monitorcore.
func (s *Store) logging(r *Record, berth string) (monitorcore.Logging, error) {
	lc := r.HostConfig.LogConfig
	if lc.Type == "" {
		lc = DefaultLogConfig()
	}
	lg := monitorcore.Logging{Path: s.LogPath(r.ID), Berth: berth, MaxFile: 1}
	attrs := logAttrs(lc, r)
	tagTmpl, hasTag := lc.Config["tag"]
	switch lc.Type {
	case LogJSONFile:
		lim, err := lc.Limits()
		if err != nil {
			return lg, err
		}
		lg.MaxSize, lg.MaxFile, lg.Compress = lim.MaxSize, lim.MaxFile, lim.Compress
		if hasTag {
			// json-file has no default tag: one asked for is an attribute.
			tag, err := logTag(tagTmpl, r)
			if err != nil {
				return lg, fmt.Errorf("--log-opt tag: %w", err)
			}
			attrs["tag"] = tag
		}
		if len(attrs) > 0 {
			b, err := json.Marshal(attrs)
			if err != nil {
				return lg, err
			}
			lg.Attrs = string(b)
		}
	case LogJournald:
		if !hasTag {
			tagTmpl = "{{.ID}}"
		}
		tag, err := logTag(tagTmpl, r)
		if err != nil {
			return lg, fmt.Errorf("--log-opt tag: %w", err)
		}
		lg.Journal = []string{"CONTAINER_ID=" + short(r.ID), "CONTAINER_ID_FULL=" + r.ID,
			"CONTAINER_NAME=" + r.Name, "CONTAINER_TAG=" + tag, "SYSLOG_IDENTIFIER=" + tag,
			"IMAGE_NAME=" + r.Config.Image}
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if jk := journalKey(k); jk != "" {
				lg.Journal = append(lg.Journal, jk+"="+attrs[k])
			}
		}
		lg.JournalSocket = JournalSocket()
		if _, err := os.Stat(lg.JournalSocket); err != nil {
			// Docker's journald driver refuses the start too.
			return lg, fmt.Errorf("--log-driver journald: journald is not enabled on this host (%w)", err)
		}
	}
	return lg, nil
}

// CompressLogMain is berth's hidden command (monitorcore.CompressArg
// FILE) that the monitor spawns after a rotation: FILE becomes FILE.gz.
// It returns the exit status.
func CompressLogMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "berth %s: needs one file\n", monitorcore.CompressArg)
		return 2
	}
	if err := compressLog(args[0]); err != nil {
		fmt.Fprintf(os.Stderr, "berth %s: %v\n", monitorcore.CompressArg, err)
		return 1
	}
	return 0
}

// compressLog gzips a rotated log: written aside, renamed into place,
// then the plain file removed, so a reader finds every line at any
// moment (in the plain file, which it prefers, or in the .gz).
func compressLog(name string) error {
	in, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	defer in.Close()
	tmp := name + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	z := gzip.NewWriter(out)
	_, err = io.Copy(z, in)
	if cerr := z.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compress log %s: %w", name, err)
	}
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("compress log: %w", err)
	}
	return nil
}
