package handler

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Window is the daily maintenance window in an IANA time zone. The zero
// Window is always open.
type Window struct {
	start, end int // minutes after local midnight; end < start crosses midnight
	loc        *time.Location
	text       string
}

// windowSpec is HH:MM-HH:MM, the hours of one or two digits: fmt.Sscanf also
// took signs, spaces and three-digit hours.
var windowSpec = regexp.MustCompile(`^([0-9]{1,2}):([0-9]{2})-([0-9]{1,2}):([0-9]{2})$`)

// twoDigits reads what windowSpec matched: at most two digits.
func twoDigits(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// ParseWindow parses "HH:MM-HH:MM" in the time zone tz. An empty spec is the
// always-open window.
func ParseWindow(spec, tz string) (Window, error) {
	if spec == "" {
		return Window{}, nil
	}
	loc, err := loadZone(tz)
	if err != nil {
		return Window{}, err
	}
	m := windowSpec.FindStringSubmatch(spec)
	if m == nil {
		return Window{}, fmt.Errorf("%q is not HH:MM-HH:MM, such as 01:00-05:00", spec)
	}
	h1, m1, h2, m2 := twoDigits(m[1]), twoDigits(m[2]), twoDigits(m[3]), twoDigits(m[4])
	if h1 > 23 || h2 > 23 || m1 > 59 || m2 > 59 {
		return Window{}, fmt.Errorf("%q is not HH:MM-HH:MM, such as 01:00-05:00", spec)
	}
	w := Window{start: h1*60 + m1, end: h2*60 + m2, loc: loc}
	if w.start == w.end {
		return Window{}, fmt.Errorf("%q starts and ends at the same time; leave MAINTENANCE_WINDOW empty for always", spec)
	}
	w.text = fmt.Sprintf("%02d:%02d-%02d:%02d %s", h1, m1, h2, m2, tz)
	return w, nil
}

// loadZone loads an IANA time zone. "Local" and "" are not zones: they would
// mean whatever the machine is set to (UTC under FC).
func loadZone(tz string) (*time.Location, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" || tz == "Local" {
		return nil, fmt.Errorf("MAINTENANCE_TZ %q is not an IANA time zone such as Asia/Shanghai", tz)
	}
	return loc, nil
}

// Always reports whether the window is always open.
func (w Window) Always() bool { return w.loc == nil }

func (w Window) String() string {
	if w.Always() {
		return "always"
	}
	return w.text
}

// MarshalJSON shows the window as text in logs.
func (w Window) MarshalJSON() ([]byte, error) { return json.Marshal(w.String()) }

// Allows reports whether an upgrade that starts at t and takes d ends inside
// the same opening of the window: a device must not be rebooting when the
// window closes and the site's traffic comes back.
func (w Window) Allows(t time.Time, d time.Duration) bool {
	if w.Always() {
		return true
	}
	open, close := w.opening(t)
	return !t.Before(open) && t.Before(close) && !t.Add(d).After(close)
}

// opening returns the most recent opening of the window that started at or
// before t (it may have closed already).
func (w Window) opening(t time.Time) (open, close time.Time) {
	local := t.In(w.loc)
	y, m, d := local.Date()
	open = time.Date(y, m, d, w.start/60, w.start%60, 0, 0, w.loc)
	if open.After(local) {
		open = time.Date(y, m, d-1, w.start/60, w.start%60, 0, 0, w.loc)
	}
	oy, om, od := open.Date()
	if w.end <= w.start {
		od++ // crosses midnight
	}
	close = time.Date(oy, om, od, w.end/60, w.end%60, 0, 0, w.loc)
	return open, close
}

// nextFit returns when an upgrade that takes d may next start: t itself if
// it fits now, else the next opening it fits in (t if none ever does: the
// window is shorter than the upgrade, which the gate reports).
func (w Window) nextFit(t time.Time, d time.Duration) time.Time {
	if w.Allows(t, d) {
		return t
	}
	local := t.In(w.loc)
	y, m, day := local.Date()
	for i := 0; i <= 2; i++ {
		// On a spring-forward day an opening in the gap is the first
		// instant after it (time.Date's reading, and opening's).
		open := time.Date(y, m, day+i, w.start/60, w.start%60, 0, 0, w.loc)
		if open.After(t) && w.Allows(open, d) {
			return open
		}
	}
	return t
}
