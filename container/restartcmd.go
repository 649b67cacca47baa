package container

// Restart is `berth restart`: stop the container as Stop does, start it
// again under a new monitor (the lean program where it fits), and
// journal the restart as Docker does (after its kill, die, stop and
// start).
func (s *Store) Restart(ref string, o StopOpts, globalArgs []string) error {
	if err := s.Stop(ref, o); err != nil {
		return err
	}
	r, err := s.Find(ref)
	if err != nil {
		return err
	}
	if lm := s.LeanFor(r); lm != nil {
		err = lm.Run(r, globalArgs)
	} else {
		err = s.SpawnMonitor(r.ID, globalArgs, false, nil)
	}
	if err != nil {
		return err
	}
	s.emit(r, "restart")
	return nil
}
