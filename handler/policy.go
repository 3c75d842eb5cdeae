package handler

import (
	"slices"
	"time"

	"github.com/hashicorp/go-version"
	"github.com/sag-upgrade/sag-upgrade/handler/upgrade"
)

// Policy chooses the version a device should run.
type Policy struct {
	Channel       string        // "release", or "beta" which also accepts releases
	Hold          []string      // versions never to install
	MinReleaseAge time.Duration // a release younger than this is not installed yet
}

// Choose returns the release to install on a device running current, or the
// reason there is none. pin, when set, is the request's targetVersion: it
// replaces "newest" but is still subject to the hold list and never a
// downgrade. A pin is an operator's explicit choice, so it may name a beta and
// skips the minimum age.
func (p Policy) Choose(current string, offered []Release, pin string, now time.Time) (Release, string) {
	if current == "" {
		return Release{}, upgrade.ReasonVersionUnknown
	}
	if pin != "" {
		i := slices.IndexFunc(offered, func(r Release) bool { return compareVersions(r.Code, pin) == 0 })
		switch {
		case i < 0:
			return Release{}, upgrade.ReasonNotOffered
		case p.held(pin):
			return Release{}, upgrade.ReasonHeld
		case compareVersions(pin, current) == 0:
			return Release{}, upgrade.ReasonUpToDate
		case compareVersions(pin, current) < 0:
			return Release{}, upgrade.ReasonWouldDowngrade
		}
		return offered[i], ""
	}

	var newer []Release
	anyInChannel := false
	for _, r := range offered {
		if r.Type != "release" && !(p.Channel == "beta" && r.Type == "beta") {
			continue
		}
		anyInChannel = true
		if isNewer(r, current, offered) {
			newer = append(newer, r)
		}
	}
	if len(newer) == 0 {
		if !anyInChannel {
			return Release{}, upgrade.ReasonNoRelease
		}
		return Release{}, upgrade.ReasonUpToDate
	}
	candidates := slices.DeleteFunc(slices.Clone(newer), func(r Release) bool { return p.held(r.Code) })
	if len(candidates) == 0 {
		return Release{}, upgrade.ReasonHeld
	}
	candidates = slices.DeleteFunc(candidates, func(r Release) bool {
		return p.MinReleaseAge > 0 && now.Sub(r.Created) < p.MinReleaseAge
	})
	if len(candidates) == 0 {
		return Release{}, upgrade.ReasonTooNew
	}
	return slices.MaxFunc(candidates, func(a, b Release) int {
		if c := compareVersions(a.Code, b.Code); c != 0 {
			return c
		}
		return a.Created.Compare(b.Created)
	}), ""
}

func (p Policy) held(v string) bool {
	return slices.ContainsFunc(p.Hold, func(h string) bool { return compareVersions(h, v) == 0 })
}

// isNewer reports whether r is newer than the version current. Dotted numbers
// compare numerically, and a device on a dotted version moves only to a
// higher dotted version: a code that does not parse cannot be shown not to be
// a downgrade. DPI signature versions have no documented format, so when
// current does not parse, the release is newer if it was created after the
// offered entry matching current. An empty code names nothing to install.
func isNewer(r Release, current string, offered []Release) bool {
	if r.Code == "" {
		return false
	}
	if validVersion(current) {
		return validVersion(r.Code) && compareVersions(r.Code, current) > 0
	}
	i := slices.IndexFunc(offered, func(o Release) bool { return o.Code == current })
	return i >= 0 && r.Created.After(offered[i].Created)
}

// validVersion reports whether v is a dotted number of 2 to 4 parts.
func validVersion(v string) bool {
	parsed, err := version.NewVersion(v)
	return err == nil && parsed.Original() == v && len(parsed.Segments()) >= 2 &&
		len(parsed.Segments()) <= 4 && parsed.Prerelease() == "" && parsed.Metadata() == "" && v[0] != 'v'
}

// compareVersions compares dotted numbers, a missing part counting as 0
// ("2.0" == "2.0.0"). Strings that do not parse compare as text.
func compareVersions(a, b string) int {
	va, errA := version.NewVersion(a)
	vb, errB := version.NewVersion(b)
	if errA != nil || errB != nil {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	return va.Compare(vb)
}
