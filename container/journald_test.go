package container

import (
	"reflect"
	"testing"
)

// The attributes of a journal entry are the fields the driver's labels=
// and env= added: not journald's own (_*, __*), not the driver's
// per-entry fields; a non-UTF-8 value comes as an array of bytes.
func TestJournalAttrs(t *testing.T) {
	line := []byte(`{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1700000000000000","_PID":"7","MESSAGE":"hi",` +
		`"PRIORITY":"6","CONTAINER_ID":"abc","CONTAINER_ID_FULL":"abcdef","CONTAINER_NAME":"web","CONTAINER_TAG":"abc",` +
		`"SYSLOG_IDENTIFIER":"abc","IMAGE_NAME":"busybox","TEAM":"blue","GREETING":[104,255]}`)
	got := journalAttrs(line)
	want := map[string]string{"TEAM": "blue", "GREETING": "h\xff"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("journalAttrs = %q, want %q", got, want)
	}
	if s := string(appendAttrs(nil, got)); s != "GREETING=h%FF,TEAM=blue" {
		t.Errorf("as logs --details prints them: %q", s)
	}
}
