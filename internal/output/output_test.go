package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

type row struct {
	ID   string
	Size int64
	Tags []string
}

func TestList(t *testing.T) {
	items := []row{{"a1", 67108864, []string{"x", "y"}}, {"b2", 5, nil}}
	tab := Table{Default: "{{.ID}}\t{{.Size}}", Labels: map[string]string{"ID": "THE ID"}}
	for _, tc := range []struct{ spec, want string }{
		{"", "THE ID   SIZE\na1       67108864\nb2       5\n"},
		{"table", "THE ID   SIZE\na1       67108864\nb2       5\n"},
		{"table {{.Size}}", "SIZE\n67108864\n5\n"},
		{"{{.ID}}:{{.Size}}", "a1:67108864\nb2:5\n"},
		{`{{join .Tags ","}}|{{upper .ID}}|{{title "ab cd"}}|{{pad .ID 1 2}}|{{truncate .ID 1}}|{{lower "AB"}}|{{index (split "p:q" ":") 1}}`,
			"x,y|A1|Ab Cd| a1  |a|ab|q\n|B2|Ab Cd| b2  |b|ab|q\n"},
		{`{{println .ID}}`, "a1\n\nb2\n\n"},
	} {
		var b bytes.Buffer
		if err := List(&b, tc.spec, tab, items); err != nil {
			t.Fatalf("%q: %v", tc.spec, err)
		}
		if b.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.spec, b.String(), tc.want)
		}
	}
	// json: one object per line, each parseable, numbers as numbers.
	var b bytes.Buffer
	if err := List(&b, "json", tab, items); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("json: %q", b.String())
	}
	var r row
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil || r.Size != 67108864 || r.ID != "a1" {
		t.Errorf("json line %q: %+v %v", lines[0], r, err)
	}
	if err := List(&b, "{{.Nope", tab, items); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("bad template: %v", err)
	}
}

func TestInspectKeepsIntegers(t *testing.T) {
	obj := map[string]any{"HostConfig": map[string]any{"Memory": int64(67108864), "ShmSize": int64(1 << 40)}}
	var b bytes.Buffer
	if err := Inspect(&b, "{{.HostConfig.Memory}} {{.HostConfig.ShmSize}} {{json .HostConfig}}", []any{obj}); err != nil {
		t.Fatal(err)
	}
	if want := `67108864 1099511627776 {"Memory":67108864,"ShmSize":1099511627776}` + "\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := Inspect(&b, "", []any{}); err != nil || b.String() != "[]\n" {
		t.Errorf("inspect of nothing: %q %v", b.String(), err)
	}
}
