package aggregation

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

type tinyCircuit struct {
	X frontend.Variable `gnark:",public"`
	Y frontend.Variable
}

func (c *tinyCircuit) Define(api frontend.API) error {
	api.AssertIsEqual(api.Mul(c.Y, c.Y), c.X)
	return nil
}

func tinyKeys(t *testing.T, dir string) *Keys {
	t.Helper()
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &tinyCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		t.Fatal(err)
	}
	return &Keys{CCS: ccs, PK: pk, VK: vk, Dir: dir, Created: true}
}

func vkBytes(t *testing.T, k *Keys) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := k.VK.WriteRawTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Concurrent setups of one circuit (two processes on a cold cache) must leave ONE setup's keys in
// the cache, and every process must end up holding the cached keys (its proofs verify on-chain
// against the cached Verifier.sol).
func TestStoreConcurrentSetupsAgreeOnOneEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "entry")
	keys := []*Keys{tinyKeys(t, dir), tinyKeys(t, dir), tinyKeys(t, dir), tinyKeys(t, dir)}
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	for i, k := range keys {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = k.store() }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	cached := &Keys{Dir: dir}
	if err := cached.load(); err != nil {
		t.Fatal(err)
	}
	want := vkBytes(t, cached)
	created := 0
	for i, k := range keys {
		if !bytes.Equal(vkBytes(t, k), want) {
			t.Fatalf("process %d holds a vk that is not the cached one", i)
		}
		if k.Created {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d processes claim to have created the cached keys, want 1", created)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "*.tmp-*"))
	if len(left) != 0 {
		t.Fatalf("temporary directories left behind: %v", left)
	}
}

// An incomplete entry (no pk.dump: an older layout or a crash) is replaced, not adopted.
func TestStoreReplacesIncompleteEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "entry")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vk.bin"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := tinyKeys(t, dir)
	if err := k.store(); err != nil {
		t.Fatal(err)
	}
	cached := &Keys{Dir: dir}
	if err := cached.load(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(vkBytes(t, cached), vkBytes(t, k)) || !k.Created {
		t.Fatal("the incomplete entry was not replaced by this setup's keys")
	}
}
