package otssim

import (
	"maps"
	"slices"
)

// Calls returns how many requests each action received, whatever their
// outcome ("Unknown" counts requests for paths that name no emulated action).
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// Failures returns how many requests failed, by error code ("OTSServerBusy",
// "OTSConditionCheckFail", …) or, for faults with no error answer, by fault
// kind ("BadGateway", "Drop", "LostReply", "SlowReply"). A batch counts once
// for each failed row, under its code.
func (s *Server) Failures() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.failures)
}

// Throttled returns how many calls were refused over their QPS limit.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// Tables returns the names of the tables, sorted.
func (s *Server) Tables() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.tables))
}

// Rows returns a snapshot of a table's rows in primary key order; nil for
// an unknown table.
func (s *Server) Rows(tableName string) []Row {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[tableName]
	if t == nil {
		return nil
	}
	out := make([]Row, len(t.rows))
	for i, r := range t.rows {
		out[i] = t.snapshot(r)
	}
	return out
}
