package chaos

import "testing"

func TestRoll(t *testing.T) {
	fails := 0
	for n := 1; n <= 20000; n++ {
		f, _ := Roll(7, 0.1, "UpdateSmartAccessGatewayVersion", "sag-a", n)
		again, _ := Roll(7, 0.1, "UpdateSmartAccessGatewayVersion", "sag-a", n)
		if f != again {
			t.Fatal("the same call rolled twice gave two answers")
		}
		if f {
			fails++
		}
	}
	if fails < 1800 || fails > 2200 {
		t.Fatalf("%d of 20000 calls failed at rate 0.1", fails)
	}
	if f, _ := Roll(7, 0, "op", "k", 1); f {
		t.Fatal("rate 0 failed a call")
	}
	same := 0
	for n := 1; n <= 1000; n++ {
		a, _ := Roll(1, 0.5, "op", "k", n)
		b, _ := Roll(2, 0.5, "op", "k", n)
		if a == b {
			same++
		}
	}
	if same > 600 {
		t.Fatalf("two seeds agree on %d of 1000 calls", same)
	}
	picks := map[uint64]int{}
	for n := 1; n <= 3000; n++ {
		if f, p := Roll(3, 1, "op", "k", n); f {
			picks[p%3]++
		}
	}
	for k, c := range picks {
		if c < 800 {
			t.Fatalf("pick %d chosen %d times of 3000", k, c)
		}
	}
}
