package benchverify

import "testing"

// A small run: every measured verification must succeed and the figures must be positive.
func TestRunSmall(t *testing.T) {
	res, err := Run(Options{CacheDir: t.TempDir(), FixturesDir: "../../tests/fixtures/gnark", Proofs: 8, NPublic: 2, BatchSizes: []int{1, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sections) != 3 {
		t.Fatalf("want groth16, plonk-gnark, plonk-snarkjs sections, got %d", len(res.Sections))
	}
	for _, s := range res.Sections {
		for _, r := range s.Rates {
			if r.Proofs <= 0 || r.ProofsPerS <= 0 {
				t.Fatalf("%s/%s: empty measurement %+v", s.Scheme, r.Name, r)
			}
		}
	}
	for _, s := range res.Sections[:2] {
		if len(s.Rates) != 3 {
			t.Fatalf("%s: want native + 2 batch sizes, got %+v", s.Scheme, s.Rates)
		}
	}
}
