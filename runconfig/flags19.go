package runconfig

// applyIssue19Flags reads the run flags added by issue 19 (devices,
// cgroup, pull, id files) into o.
func applyIssue19Flags(o *Options, f Flags) error {
	h := &o.Host
	for _, v := range f.Device {
		d, err := ParseDevice(v)
		if err != nil {
			return err
		}
		h.Devices = append(h.Devices, d)
	}
	for _, v := range f.DeviceCgroupRule {
		if _, err := ParseDeviceCgroupRule(v); err != nil {
			return err
		}
		h.DeviceCgroupRules = append(h.DeviceCgroupRules, v)
	}
	h.ContainerIDFile = f.CIDFile
	return nil
}
