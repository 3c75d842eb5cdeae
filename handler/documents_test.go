package handler

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// A rollback must not break on a document a newer version wrote: fields it
// does not know are skipped; a known field of the wrong type or out of range
// is an error that names the document.
func TestDocumentsToleratePlusStrict(t *testing.T) {
	newer := `{"versionType":"Device","model":"sag-1000","targetVersion":"2.3.1","wave":2,"allocated":40,"population":118,` +
		`"breaker":"closed","baseFinished":3,"baseFailed":1,"records":{"verified":30,"requested":10,"paused":4},"reserved":0,` +
		`"paused":true,"approvedWave":2,"notes":{"by":"ops"}}`
	var doc rolloutDoc
	if err := decodeRollout("rollout#Device#sag-1000#2.3.1", []byte(newer), &doc); err != nil {
		t.Fatalf("a newer version's rollout: %v", err)
	}
	if doc.Wave != 2 || doc.Allocated != 40 || doc.stats().verified != 30 || doc.stats().inFlight != 10 {
		t.Fatalf("read %+v", doc)
	}
	if c, err := decodeControl([]byte(`{"killSwitch":true,"by":"run-1","pausedRollouts":["x"]}`)); err != nil || !c.KillSwitch {
		t.Fatalf("a newer version's control document: %+v %v", c, err)
	}

	for _, body := range []string{
		`{"wave":"2"}`,
		`{"allocated":-1}`,
		`{"breaker":"half-open"}`,
		`{"records":{"verified":-3}}`,
		`{"baseFinished":1,"baseFailed":2}`,
		`{"population":1e400}`,
		`{"waveStartedAt":"yesterday"}`,
		`[]`,
	} {
		var doc rolloutDoc
		err := decodeRollout("rollout#Device#m#1.0", []byte(body), &doc)
		if err == nil || !strings.Contains(err.Error(), "rollout#Device#m#1.0") {
			t.Errorf("%s: %v", body, err)
		}
	}
	if _, err := decodeControl([]byte(`{"killSwitch":"yes"}`)); err == nil {
		t.Error(`killSwitch "yes" was read`)
	}
}

// Any document body: an error, or a rollout every number of which is in
// range, that writes and reads back the same.
func FuzzDecodeRollout(f *testing.F) {
	for _, s := range []string{
		`{"versionType":"Device","model":"sag-1000","targetVersion":"2.3.1","wave":1,"allocated":7,"population":118,"breaker":"open","breakerReason":"3 of 7","records":{"verified":4,"failed":3}}`,
		`{"wave":-1}`, `{"records":{"x":1}}`, `{}`, `null`, `{"reserved":3,"done":true,"waveVerifiedAt":"2026-11-22T18:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var doc rolloutDoc
		if err := decodeRollout("rollout#x", body, &doc); err != nil {
			return
		}
		st := doc.stats()
		if doc.Wave < 0 || doc.Allocated < 0 || doc.Population < 0 || st.started < 0 || st.inFlight < 0 || st.failed < 0 ||
			(doc.Breaker != "" && doc.Breaker != "open" && doc.Breaker != "closed") {
			t.Fatalf("accepted out of range: %+v", doc)
		}
		again, _ := json.Marshal(doc)
		var back rolloutDoc
		if err := decodeRollout("rollout#x", again, &back); err != nil {
			t.Fatalf("a document it wrote does not read back: %v\n%s", err, again)
		}
		if len(back.Records) == 0 && len(doc.Records) == 0 {
			back.Records, doc.Records = nil, nil
		}
		if !reflect.DeepEqual(doc.stats(), back.stats()) || doc.Wave != back.Wave || doc.Breaker != back.Breaker {
			t.Fatalf("round trip: %+v, then %+v", doc, back)
		}
	})
}
