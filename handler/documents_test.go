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
// range, that writes and reads back the same; the kill switch, the drain
// lease and a batch record likewise.
func FuzzDecodeDocuments(f *testing.F) {
	for _, s := range []string{
		`{"versionType":"Device","model":"sag-1000","targetVersion":"2.3.1","wave":1,"allocated":7,"population":118,"breaker":"open","breakerReason":"3 of 7","records":{"verified":4,"failed":3}}`,
		`{"wave":-1}`, `{"records":{"x":1}}`, `{}`, `null`, `{"killSwitch":true,"by":"run-1 incident","at":"2026-11-22T18:00:00Z"}`,
		`{"runId":"run-2","until":"2026-11-22T18:15:00Z"}`, `{"digest":"ab12","force":true,"parentRunId":"run-3"}`, `{"reserved":3,"done":true,"waveVerifiedAt":"2026-11-22T18:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// The other documents: an error or a value, never a panic, and
		// what they write reads back.
		if c, err := decodeControl(body); err == nil {
			again, _ := json.Marshal(c)
			if back, err := decodeControl(again); err != nil || back.KillSwitch != c.KillSwitch || back.By != c.By {
				t.Fatalf("control round trip: %+v, then %+v (%v)", c, back, err)
			}
		}
		if l, err := decodeLease(body); err == nil {
			again, _ := json.Marshal(l)
			if back, err := decodeLease(again); err != nil || back.RunID != l.RunID || !back.Until.Equal(l.Until) {
				t.Fatalf("lease round trip: %+v, then %+v (%v)", l, back, err)
			}
		}
		if b, err := decodeBatch("b", body); err == nil {
			again, _ := json.Marshal(b)
			if back, err := decodeBatch("b", again); err != nil || back.Digest != b.Digest || back.Force != b.Force {
				t.Fatalf("batch round trip: %+v, then %+v (%v)", b, back, err)
			}
		}
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
