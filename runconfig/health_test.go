package runconfig

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/container"
)

func strp(s string) *string { return &s }

func TestApplyHealthAndImage(t *testing.T) {
	img := []byte(`{"config":{"Healthcheck":{"Test":["CMD","probe"],"Interval":5000000000,"Retries":7}}}`)
	for _, c := range []struct {
		name string
		f    HealthFlags
		want *container.HealthConfig
	}{
		{"image only", HealthFlags{}, &container.HealthConfig{Test: []string{"CMD", "probe"}, Interval: 5 * time.Second, Retries: 7}},
		{"flags over the image, field by field", HealthFlags{Interval: strp("1s"), StartPeriod: strp("2s")},
			&container.HealthConfig{Test: []string{"CMD", "probe"}, Interval: time.Second, StartPeriod: 2 * time.Second, Retries: 7}},
		{"--health-cmd is CMD-SHELL", HealthFlags{Cmd: strp("curl -f x")},
			&container.HealthConfig{Test: []string{"CMD-SHELL", "curl -f x"}, Interval: 5 * time.Second, Retries: 7}},
		{"--no-healthcheck", HealthFlags{None: true}, &container.HealthConfig{Test: []string{"NONE"}}},
	} {
		o := &Options{}
		if err := applyHealth(o, c.f); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := ApplyImageHealth(o, img); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(o.Config.Healthcheck, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, o.Config.Healthcheck, c.want)
		}
	}
	// Timings with no command anywhere: no check.
	o := &Options{}
	if err := applyHealth(o, HealthFlags{Interval: strp("1s")}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyImageHealth(o, []byte(`{"config":{}}`)); err != nil || o.Config.Healthcheck != nil {
		t.Errorf("timings without a command: %+v, %v", o.Config.Healthcheck, err)
	}
	for _, bad := range []struct {
		f    HealthFlags
		want string
	}{
		{HealthFlags{Interval: strp("soon")}, "--health-interval"},
		{HealthFlags{Timeout: strp("-1s")}, "--health-timeout"},
		{HealthFlags{StartInterval: strp("1us")}, "at least 1ms"},
		{HealthFlags{Retries: new(int)}, ""},
		{HealthFlags{OnFailure: "explode"}, "--health-on-failure"},
		{HealthFlags{None: true, Cmd: strp("true")}, "conflicts"},
	} {
		err := applyHealth(&Options{}, bad.f)
		if bad.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", bad.f, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: error %v, want one about %s", bad.f, err, bad.want)
		}
	}
	o = &Options{}
	o.Host.Sdnotify = "healthy"
	if err := ApplyImageHealth(o, nil); err == nil || !strings.Contains(err.Error(), "needs a healthcheck") {
		t.Errorf("--sdnotify=healthy without a check: %v", err)
	}
}

func TestNextHealthDelay(t *testing.T) {
	h := container.HealthConfig{Interval: 10 * time.Second, StartPeriod: time.Minute, StartInterval: time.Second}
	for _, c := range []struct {
		since  time.Duration
		passed bool
		want   time.Duration
	}{{0, false, time.Second}, {30 * time.Second, true, 10 * time.Second}, {2 * time.Minute, false, 10 * time.Second}} {
		if got := container.NextHealthDelay(h, c.since, c.passed); got != c.want {
			t.Errorf("%v after the start, passed %v: %v, want %v", c.since, c.passed, got, c.want)
		}
	}
	if got := container.NextHealthDelay(container.HealthConfig{}, 0, false); got != container.DefaultHealthInterval {
		t.Errorf("defaults: %v", got)
	}
}
