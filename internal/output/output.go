// Package output prints what berth's commands list or inspect the way
// Docker's --format does: "table" with a header, "json" with one object
// per line, or a Go template with Docker's functions over typed values.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"text/tabwriter"
	"text/template"
	"unicode"
)

// Funcs are the template functions Docker's --format offers.
var Funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	},
	"join":  strings.Join,
	"split": strings.Split,
	"title": title,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", max(before, 0)) + s + strings.Repeat(" ", max(after, 0))
	},
	"truncate": func(s string, n int) string {
		if r := []rune(s); n >= 0 && len(r) > n {
			return string(r[:n])
		}
		return s
	},
	"println": func(a ...any) string { return fmt.Sprintln(a...) },
}

// title capitalises the first letter of each word, as Docker's title.
func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if unicode.IsSpace(prev) || prev == '-' || prev == '_' {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

// Parse compiles a --format template with Docker's functions; "\t" in
// it is a tab, as Docker's users type it.
func Parse(text string) (*template.Template, error) {
	t, err := template.New("format").Funcs(Funcs).Parse(strings.ReplaceAll(text, `\t`, "\t") + "\n")
	if err != nil {
		return nil, fmt.Errorf("--format: %w", err)
	}
	return t, nil
}

// Check reports a --format that will not parse, before any work is done.
func Check(spec string) error {
	if spec == "" || spec == "json" || spec == "table" {
		return nil
	}
	_, err := Parse(strings.TrimPrefix(spec, "table"))
	return err
}

// Table describes a listing: its default columns and their headers.
type Table struct {
	// Default is the template of "table" alone (and of no --format).
	Default string
	// Labels name the header of a field where it is not the field's
	// name in capitals.
	Labels map[string]string
}

var field = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`) })

// List prints items as spec says: "" or "table" is t's table, "table
// TEMPLATE" a table of TEMPLATE's columns, "json" one JSON object per
// line, anything else a template per item.
func List[T any](w io.Writer, spec string, t Table, items []T) error {
	if spec == "json" {
		spec = "{{json .}}"
	}
	text, table := spec, false
	if spec == "" {
		text, table = t.Default, true
	} else if f, ok := strings.CutPrefix(spec, "table"); ok {
		table, text = true, strings.TrimSpace(f)
		if text == "" {
			text = t.Default
		}
	}
	tmpl, err := Parse(text)
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		out = tw
		hdr := field().ReplaceAllStringFunc(strings.ReplaceAll(text, `\t`, "\t"), func(m string) string {
			f := field().FindStringSubmatch(m)[1]
			if l, ok := t.Labels[f]; ok {
				return l
			}
			return strings.ToUpper(f)
		})
		fmt.Fprintln(tw, hdr)
	}
	for _, it := range items {
		if err := tmpl.Execute(out, it); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// Inspect prints objects as docker inspect does: with no spec a JSON
// array indented by four spaces, "json" the same, else a template per
// object over its JSON form (so fields have their JSON names and numbers
// stay integers).
func Inspect(w io.Writer, spec string, objs []any) error {
	if spec == "" || spec == "json" {
		return Indented(w, objs)
	}
	tmpl, err := Parse(spec)
	if err != nil {
		return err
	}
	for _, o := range objs {
		v, err := JSONValue(o)
		if err != nil {
			return err
		}
		if err := tmpl.Execute(w, v); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	return nil
}

// One prints a single object (info, version): "" with def, "json" as
// one line of JSON, else a template over the typed value.
func One(w io.Writer, spec, def string, obj any) error {
	switch spec {
	case "":
		spec = def
	case "json":
		spec = "{{json .}}"
	}
	tmpl, err := Parse(spec)
	if err != nil {
		return err
	}
	if err := tmpl.Execute(w, obj); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	return nil
}

// JSONValue is v as encoding/json sees it, numbers kept as json.Number,
// so a template prints 67108864, not 6.7108864e+07.
func JSONValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// Indented writes v as Docker's inspect does.
func Indented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}
