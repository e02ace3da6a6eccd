package slice

import (
	"encoding/hex"
	"testing"
)

// Vectors from ezkl 23.0.5: ezkl.poseidon_hash for [1,2] and [5], and the input commitment
// (instance 0) of a real hashed-visibility proof of the sample model's layer1 slice.
// ezkl prints field elements little-endian.
func TestPoseidonMatchesEzkl(t *testing.T) {
	cases := []struct {
		in    []int64
		leHex string
	}{
		{[]int64{1, 2}, "8c2bde792da25f9124562e03e8b5a4883b3eaf481bf6e15866f38a53315b8729"},
		{[]int64{5}, "60af85cb03b952c59d09b31e5a1e1a3fe8d01642cffb1e844181b01bb38c2c21"},
		{[]int64{0, 180, 120, 44, 36, 13, 0, 60}, "83a25ec341ecb450bd34074ef0905bb91e6506a4b510b72c6ed7528ee917982c"},
		{[]int64{-3, 7, -128}, ""},
	}
	for _, c := range cases {
		h := PoseidonEzkl(c.in)
		be := h.Bytes()
		le := make([]byte, 32)
		for i := range be {
			le[i] = be[31-i]
		}
		if c.leHex != "" && hex.EncodeToString(le) != c.leHex {
			t.Fatalf("%v: got %x want %s", c.in, le, c.leHex)
		}
	}
}
