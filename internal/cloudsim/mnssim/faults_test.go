package mnssim_test

import (
	"fmt"
	"testing"

	ali_mns "github.com/aliyun/aliyun-mns-go-sdk"

	"github.com/sag-upgrade/sag-upgrade/internal/cloudsim/mnssim"
)

// outcome names what the SDK made of a call.
func outcome(err error) string {
	for name, tmpl := range map[string]interface{ IsEqual(error) bool }{
		"QpsLimitExceeded": &ali_mns.ERR_MNS_QPS_LIMIT_EXCEEDED,
		"InternalError":    &ali_mns.ERR_MNS_INTERNAL_ERROR,
		"Unknown code":     &ali_mns.ERR_MNS_UNKNOWN_CODE,
		"Undecodable":      &ali_mns.ERR_UNMARSHAL_ERROR_RESPONSE_FAILED,
		"Send failed":      &ali_mns.ERR_SEND_REQUEST_FAILED,
	} {
		if tmpl.IsEqual(err) {
			return name
		}
	}
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// sendSeries sends n messages through a fresh emulator with the given
// faults and returns what each send came to and how many were stored.
func sendSeries(t *testing.T, f mnssim.Faults, n int) ([]string, int) {
	e := newEnv(t, func(o *mnssim.Options) { o.Faults = f })
	q := e.createQueue("work", mnssim.QueueOptions{})
	var outcomes []string
	for i := range n {
		_, err := q.SendMessage(ali_mns.MessageSendRequest{MessageBody: fmt.Sprint(i), Priority: 8})
		outcomes = append(outcomes, outcome(err))
		// Receives are not in Ops, so they never fail.
		if _, err := receive(q); err != nil && !ali_mns.ERR_MNS_MESSAGE_NOT_EXIST.IsEqual(err) {
			t.Fatalf("receive failed although only sends are faulted: %v", err)
		}
	}
	return outcomes, len(e.mns.Messages("work"))
}

func TestRandomFaultsAreReproducible(t *testing.T) {
	faults := mnssim.Faults{
		Seed:  42,
		Rate:  0.5,
		Kinds: []mnssim.FaultKind{mnssim.FaultQpsLimitExceeded, mnssim.FaultInternalError, mnssim.FaultTooManyRequests},
		Ops:   []string{"SendMessage"},
	}
	first, _ := sendSeries(t, faults, 24)
	again, _ := sendSeries(t, faults, 24)
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("same seed, different faults:\n%v\n%v", first, again)
	}
	counts := map[string]int{}
	for _, o := range first {
		counts[o]++
	}
	if counts["ok"] == 0 || counts["QpsLimitExceeded"] == 0 || counts["InternalError"] == 0 || counts["Unknown code"] == 0 {
		t.Errorf("outcomes %v: want successes and every kind of fault at rate 0.5", counts)
	}

	faults.Seed = 43
	other, _ := sendSeries(t, faults, 24)
	if fmt.Sprint(first) == fmt.Sprint(other) {
		t.Errorf("seeds 42 and 43 gave the same faults: %v", first)
	}
}

func TestFailedSendsStoreNothing(t *testing.T) {
	faults := mnssim.Faults{Seed: 7, Rate: 0.3, Ops: []string{"SendMessage"}} // every kind but DropAfterCommit
	outcomes, stored := sendSeries(t, faults, 30)
	ok := 0
	for _, o := range outcomes {
		if o == "ok" {
			ok++
		}
	}
	if ok == len(outcomes) || stored != ok {
		t.Errorf("%d of %d sends succeeded and %d messages were stored: %v", ok, len(outcomes), stored, outcomes)
	}
}

func TestScriptedFaults(t *testing.T) {
	e := newEnv(t)
	q := e.createQueue("work", mnssim.QueueOptions{})

	// Each step scripts faults for the next send, sends once, and checks
	// what the SDK reported, how many requests reached the emulator and how
	// many messages it stored.
	steps := []struct {
		name     string
		kind     mnssim.FaultKind
		n        int
		want     string
		requests int
		stored   int
	}{
		{"a drop is not resent for a POST", mnssim.FaultDrop, 1, "Send failed", 1, 0},
		{"a cut response is not resent for a POST", mnssim.FaultCutResponse, 1, "Send failed", 1, 0},
		{"bad gateway", mnssim.FaultBadGateway, 1, "Undecodable", 1, 0},
		{"throttled", mnssim.FaultQpsLimitExceeded, 1, "QpsLimitExceeded", 1, 0},
		{"too many requests", mnssim.FaultTooManyRequests, 1, "Unknown code", 1, 0},
		{"internal error", mnssim.FaultInternalError, 1, "InternalError", 1, 0},
		{"a drop after commit stores the message the SDK reports failed", mnssim.FaultDropAfterCommit, 1, "Send failed", 1, 1},
	}
	for _, step := range steps {
		callsBefore, storedBefore := e.mns.Calls()["SendMessage"], len(e.mns.Messages("work"))
		e.mns.FailNext("SendMessage", step.n, step.kind)
		_, err := q.SendMessage(ali_mns.MessageSendRequest{MessageBody: step.name, Priority: 8})
		requests := e.mns.Calls()["SendMessage"] - callsBefore
		stored := len(e.mns.Messages("work")) - storedBefore
		if got := outcome(err); got != step.want || requests != step.requests || stored != step.stored {
			t.Errorf("%s: SDK said %q after %d requests, %d stored; want %q, %d, %d",
				step.name, got, requests, stored, step.want, step.requests, step.stored)
		}
	}

	e.mns.FailNext("ReceiveMessage", 1, mnssim.FaultInternalError)
	if _, err := receive(q, 1); !ali_mns.ERR_MNS_INTERNAL_ERROR.IsEqual(err) {
		t.Errorf("scripted receive fault: %v, want InternalError", err)
	}
	failures := e.mns.Failures()
	for code, n := range map[string]int{"Drop": 1, "CutResponse": 1, "BadGateway": 1, "QpsLimitExceeded": 1,
		"TooManyRequests": 1, "InternalError": 2, "DropAfterCommit": 1} {
		if failures[code] != n {
			t.Errorf("Failures()[%s] = %d, want %d (all: %v)", code, failures[code], n, failures)
		}
	}
}
