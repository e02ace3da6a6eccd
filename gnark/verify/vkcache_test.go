package verify

import (
	"encoding/json"
	"sync"
	"testing"
)

// The cache must change nothing but speed: a cached key verifies the same proofs, a key that failed
// validation is never cached (its next use fails again), and a tampered proof under a cached key
// is still rejected.
func TestPlonkVKCache(t *testing.T) {
	vk := readFixture(t, "plonk_n3", "vk.bin")
	proof := readFixture(t, "plonk_n3", "proof.raw.bin")
	pub, err := ParseGnarkPublicWitness(readFixture(t, "plonk_n3", "public.bin"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := NormalizeGnarkPlonk(vk, proof, pub)
	if err != nil {
		t.Fatal(err)
	}
	before := gnarkPlonkKeys.len()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := NormalizeGnarkPlonk(vk, proof, pub)
			if err == nil && string(n.CanonicalVK) != string(first.CanonicalVK) {
				t.Error("cached key gave other canonical bytes")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if gnarkPlonkKeys.len() != before {
		t.Fatalf("the same key was cached twice (%d -> %d)", before, gnarkPlonkKeys.len())
	}
	bad := clone(proof)
	bad[63] ^= 1
	if _, err := NormalizeGnarkPlonk(vk, bad, pub); err == nil {
		t.Fatal("tampered proof accepted under a cached key")
	}
	badVK := clone(vk)
	badVK[len(badVK)-40] ^= 1
	for i := 0; i < 2; i++ {
		if _, err := NormalizeGnarkPlonk(badVK, proof, pub); err == nil {
			t.Fatalf("tampered vk accepted (attempt %d)", i)
		}
	}

	f := loadSnarkjsPlonk(t)
	spub, err := JSONPublic(f.public, "public")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := NormalizeSnarkjsPlonk(f.vk, f.proof, spub); err != nil {
			t.Fatalf("snarkjs attempt %d: %v", i, err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(f.vk, &m); err != nil {
		t.Fatal(err)
	}
	m["nPublic"] = 7
	wrong, _ := json.Marshal(m)
	for i := 0; i < 2; i++ {
		if _, err := NormalizeSnarkjsPlonk(wrong, f.proof, spub); err == nil {
			t.Fatalf("snarkjs vk with a wrong nPublic accepted (attempt %d)", i)
		}
	}
}

func TestVKCacheEvictsOldest(t *testing.T) {
	c := newVKCache[int]()
	for i := 0; i < vkCacheSize+10; i++ {
		if _, err := c.get([]byte{byte(i), byte(i >> 8)}, func([]byte) (int, error) { return i, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if c.len() != vkCacheSize {
		t.Fatalf("cache holds %d, bound %d", c.len(), vkCacheSize)
	}
	calls := 0
	v, _ := c.get([]byte{0, 0}, func([]byte) (int, error) { calls++; return -1, nil })
	if calls != 1 || v != -1 {
		t.Fatal("the oldest entry was not evicted")
	}
}
