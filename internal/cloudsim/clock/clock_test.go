package clock

import (
	"testing"
	"time"
)

func TestSimMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)
	c := NewSim(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", c.Now(), start)
	}
	ch := Changed(c)
	select {
	case <-ch:
		t.Fatal("Changed fired before the clock moved")
	default:
	}
	if got := c.Advance(10 * time.Minute); !got.Equal(start.Add(10 * time.Minute)) {
		t.Fatalf("Advance returned %v", got)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Changed did not fire after Advance")
	}
	c.Advance(-time.Hour)
	if !c.Now().Equal(start.Add(10 * time.Minute)) {
		t.Fatalf("negative Advance moved the clock to %v", c.Now())
	}
	c.Set(start) // earlier than now: ignored
	if !c.Now().Equal(start.Add(10 * time.Minute)) {
		t.Fatalf("Set to the past moved the clock to %v", c.Now())
	}
	c.Set(start.Add(time.Hour))
	if !c.Now().Equal(start.Add(time.Hour)) {
		t.Fatalf("Set = %v", c.Now())
	}
	if Changed(Real{}) != nil {
		t.Fatal("Real clock should not offer a Changed channel")
	}
}
