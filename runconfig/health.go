package runconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-project/berth/container"
)

// HealthFlags are the --health-* flags; a nil pointer is a flag not given.
type HealthFlags struct {
	Cmd                                           *string
	Interval, Timeout, StartPeriod, StartInterval *string
	Retries                                       *int
	None                                          bool
	OnFailure                                     string
}

// applyHealth turns the health flags into the container's healthcheck:
// only what was given is set, and ApplyImageHealth fills the rest from the
// image, as Docker merges them.
func applyHealth(o *Options, f HealthFlags) error {
	switch f.OnFailure {
	case "", "none", "kill", "restart", "stop":
		o.Config.HealthcheckOnFailureAction = f.OnFailure
	default:
		return fmt.Errorf("--health-on-failure %q: want none, kill, restart or stop", f.OnFailure)
	}
	given := f.Cmd != nil || f.Interval != nil || f.Timeout != nil || f.StartPeriod != nil || f.StartInterval != nil || f.Retries != nil
	if f.None {
		if given {
			return errors.New("--no-healthcheck conflicts with --health-* options")
		}
		o.Config.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		return nil
	}
	if !given {
		return nil
	}
	h := &container.HealthConfig{}
	if f.Cmd != nil && *f.Cmd != "" {
		h.Test = []string{"CMD-SHELL", *f.Cmd}
	}
	for _, d := range []struct {
		flag string
		v    *string
		out  *time.Duration
	}{{"--health-interval", f.Interval, &h.Interval}, {"--health-timeout", f.Timeout, &h.Timeout},
		{"--health-start-period", f.StartPeriod, &h.StartPeriod}, {"--health-start-interval", f.StartInterval, &h.StartInterval}} {
		if d.v == nil {
			continue
		}
		t, err := time.ParseDuration(*d.v)
		if err != nil {
			return fmt.Errorf("%s: %w", d.flag, err)
		}
		// Docker: 0 is the default; other values at least 1 ms (the
		// start period may be anything not negative).
		if t < 0 || t != 0 && t < time.Millisecond && d.flag != "--health-start-period" {
			return fmt.Errorf("%s: %s is invalid (want 0 for the default, or at least 1ms)", d.flag, *d.v)
		}
		*d.out = t
	}
	if f.Retries != nil {
		if *f.Retries < 0 {
			return fmt.Errorf("--health-retries: %d is negative", *f.Retries)
		}
		h.Retries = *f.Retries
	}
	o.Config.Healthcheck = h
	return nil
}

// ApplyImageHealth merges the image's HEALTHCHECK (from its raw config,
// which the OCI types do not carry) under the flags, field by field as
// Docker does; --no-healthcheck leaves it out.
func ApplyImageHealth(o *Options, rawConfig []byte) error {
	var img struct {
		Config struct {
			Healthcheck *container.HealthConfig `json:"Healthcheck"`
		} `json:"config"`
	}
	if len(rawConfig) > 0 {
		if err := json.Unmarshal(rawConfig, &img); err != nil {
			return fmt.Errorf("image config: %w", err)
		}
	}
	im, h := img.Config.Healthcheck, o.Config.Healthcheck
	switch {
	case im == nil:
	case h != nil && len(h.Test) > 0 && h.Test[0] == "NONE":
		// --no-healthcheck: nothing of the image's.
	case h == nil:
		c := *im
		o.Config.Healthcheck = &c
	default:
		if len(h.Test) == 0 {
			h.Test = im.Test
		}
		if h.Interval == 0 {
			h.Interval = im.Interval
		}
		if h.Timeout == 0 {
			h.Timeout = im.Timeout
		}
		if h.StartPeriod == 0 {
			h.StartPeriod = im.StartPeriod
		}
		if h.StartInterval == 0 {
			h.StartInterval = im.StartInterval
		}
		if h.Retries == 0 {
			h.Retries = im.Retries
		}
	}
	if h := o.Config.Healthcheck; h != nil && len(h.Test) == 0 {
		// Timings without a command, and none from the image: no check.
		o.Config.Healthcheck = nil
	}
	if h := o.Config.Healthcheck; h.Enabled() {
		if _, err := h.Args(); err != nil {
			return err
		}
	}
	if o.Host.Sdnotify == "healthy" && !o.Config.Healthcheck.Enabled() {
		return errors.New("--sdnotify=healthy needs a healthcheck (--health-cmd or the image's HEALTHCHECK)")
	}
	return nil
}
