// Package chaos decides which calls of an emulator fail, reproducibly: the
// decision for a call depends only on the seed, the call's operation and key
// and its number among the calls with that operation and key, so the same
// seed fails the same calls whatever the interleaving of goroutines.
package chaos

import (
	"encoding/binary"
	"hash/fnv"
)

// Roll reports whether the n-th call (from 1) of op on key fails at rate
// (0 to 1), and a second, independent draw to choose how.
func Roll(seed uint64, rate float64, op, key string, n int) (fails bool, pick uint64) {
	if rate <= 0 {
		return false, 0
	}
	h := fnv.New64a()
	var num [8]byte
	binary.LittleEndian.PutUint64(num[:], seed)
	h.Write(num[:])
	h.Write([]byte(op))
	h.Write([]byte{0}) // keeps ("ab", "c") apart from ("a", "bc")
	h.Write([]byte(key))
	h.Write([]byte{0})
	binary.LittleEndian.PutUint64(num[:], uint64(n))
	h.Write(num[:])
	x := mix(h.Sum64())
	return float64(x>>11)/(1<<53) < rate, mix(x)
}

// mix is the splitmix64 finaliser: FNV leaves consecutive inputs correlated
// in its low bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
