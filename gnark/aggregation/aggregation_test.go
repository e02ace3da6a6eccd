package aggregation

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
)

// lazyCCS is one shape's constraint system, compiled on first use and shared by the test cases
// that solve it; release drops it so that only one big system is held at a time.
type lazyCCS struct {
	shape Shape
	mu    sync.Mutex
	ccs   constraint.ConstraintSystem
}

func (l *lazyCCS) get(t *testing.T) constraint.ConstraintSystem {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ccs == nil {
		ccs, err := Compile(l.shape)
		if err != nil {
			t.Fatal(err)
		}
		l.ccs = ccs
	}
	return l.ccs
}

func (l *lazyCCS) release() {
	l.mu.Lock()
	l.ccs = nil
	l.mu.Unlock()
	runtime.GC()
}

// One compiled batch-2 circuit (~4.9M R1CS, ~1 min, ~5 GB) is shared by the soundness tests;
// each case solves the real constraint system with a (possibly tampered) full witness.
var (
	shape2 = Shape{Batch: 2, NPub: 1}
	ccs2   = &lazyCCS{shape: shape2}
)

var (
	leavesOnce sync.Once
	leafSq     Leaf
	leafCube   Leaf
	leafSq5    Leaf
)

func testLeaves(t *testing.T) {
	leavesOnce.Do(func() {
		leafSq = squareLeaf(t, 3)
		leafCube = cubeLeaf(t, 2)
		leafSq5 = squareLeaf(t, 5)
	})
}

// assignRaw builds a witness without the native checks Assign does, so that tampered leaves
// reach the circuit; claimed is the leaf list the public inputs commit to.
func assignRaw(t *testing.T, s Shape, slots []Leaf, claimed [][]byte) *Circuit {
	t.Helper()
	c := NewCircuit(s)
	for i := range slots {
		p, err := parseLoose(&slots[i])
		if err != nil {
			t.Fatal(err)
		}
		assignSlot(&c.Leaves[i], &slots[i], p)
	}
	pub := PublicInputs(claimed)
	c.RootHi, c.RootLo, c.Count = pub[0], pub[1], pub[2]
	return c
}

// parseLoose decodes the proof points only (the vk and pubs go in as bytes unchecked).
func parseLoose(l *Leaf) (*parsed, error) {
	var p parsed
	var err error
	if p.a, err = g1(l.Proof[0:64]); err != nil {
		return nil, err
	}
	if p.b, err = g2(l.Proof[64:192]); err != nil {
		return nil, err
	}
	if p.c, err = g1(l.Proof[192:256]); err != nil {
		return nil, err
	}
	return &p, nil
}

func solves(t *testing.T, c *Circuit) error {
	t.Helper()
	return solvesWith(t, ccs2.get(t), c)
}

func solvesWith(t *testing.T, ccs constraint.ConstraintSystem, c *Circuit) error {
	t.Helper()
	w, err := frontend.NewWitness(c, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	return ccs.IsSolved(w)
}

// rejects asserts the constraint system is unsatisfied and logs which constraint failed.
func rejects(t *testing.T, c *Circuit, what string) {
	t.Helper()
	rejectsWith(t, ccs2.get(t), c, what)
}

func rejectsWith(t *testing.T, ccs constraint.ConstraintSystem, c *Circuit, what string) {
	t.Helper()
	err := solvesWith(t, ccs, c)
	if err == nil {
		t.Fatal(what)
	}
	if strings.Contains(err.Error(), "inputs missing") {
		t.Fatalf("%s: rejected for a broken witness, not by a constraint: %v", what, err)
	}
	msg := err.Error()
	if len(msg) > 160 {
		msg = msg[:160]
	}
	t.Logf("rejected as expected: %s", msg)
}

func hashes(ls ...Leaf) [][]byte {
	out := make([][]byte, len(ls))
	for i := range ls {
		out[i] = ls[i].StatementHash()
	}
	return out
}

func clone(l Leaf) Leaf {
	c := Leaf{VK: bytes.Clone(l.VK), Proof: bytes.Clone(l.Proof)}
	for _, p := range l.Pubs {
		c.Pubs = append(c.Pubs, bytes.Clone(p))
	}
	return c
}

func TestBatchSoundness(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a 4.9M-constraint circuit")
	}
	testLeaves(t)
	sq, cube, sq5 := leafSq, leafCube, leafSq5
	t.Logf("batch=%d npub=%d: %d R1CS", shape2.Batch, shape2.NPub, ccs2.get(t).GetNbConstraints())

	t.Run("valid two different vks", func(t *testing.T) {
		c, hs, err := Assign(shape2, []Leaf{sq, cube})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hs[0], sq.StatementHash()) || !bytes.Equal(hs[1], cube.StatementHash()) {
			t.Fatal("Assign returned wrong leaf hashes")
		}
		if err := solves(t, c); err != nil {
			t.Fatalf("valid batch rejected: %v", err)
		}
	})
	t.Run("partial batch padded", func(t *testing.T) {
		c, hs, err := Assign(shape2, []Leaf{cube})
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) != 1 || c.Count.(*big.Int).Int64() != 1 {
			t.Fatal("padding must not enter the committed list")
		}
		if err := solves(t, c); err != nil {
			t.Fatalf("padded batch rejected: %v", err)
		}
		// the padding slot must not be claimable as a second leaf
		bad := assignRaw(t, shape2, []Leaf{cube, cube}, hashes(cube, sq))
		rejects(t, bad, "claimed a leaf that is not in any slot")
	})
	t.Run("unproven statement", func(t *testing.T) {
		// sq's proof with the public input changed to 10 (no proof of x*x = 10 exists)
		forged := clone(sq)
		forged.Pubs[0] = make([]byte, 32)
		forged.Pubs[0][31] = 10
		c := assignRaw(t, shape2, []Leaf{forged, cube}, hashes(forged, cube))
		rejects(t, c, "forged public input accepted")
	})
	t.Run("proofs swapped between leaves", func(t *testing.T) {
		a, b := clone(sq), clone(sq5) // same vk, different statements
		a.Proof, b.Proof = sq5.Proof, sq.Proof
		c := assignRaw(t, shape2, []Leaf{a, b}, hashes(a, b))
		rejects(t, c, "swapped proofs accepted")
	})
	t.Run("vk substituted", func(t *testing.T) {
		a := clone(cube)
		a.VK = bytes.Clone(sq.VK) // cube's proof and statement claimed under the square vk
		c := assignRaw(t, shape2, []Leaf{sq, a}, hashes(sq, a))
		rejects(t, c, "substituted vk accepted")
		// and the honest slots cannot be relabelled with another vk hash either
		c = assignRaw(t, shape2, []Leaf{sq, cube}, hashes(sq, a))
		rejects(t, c, "leaf hash with a different vk accepted")
	})
	t.Run("leaves reordered", func(t *testing.T) {
		c := assignRaw(t, shape2, []Leaf{sq, cube}, hashes(cube, sq))
		rejects(t, c, "reordered leaf list accepted")
	})
	t.Run("count out of range", func(t *testing.T) {
		c := assignRaw(t, shape2, []Leaf{sq, cube}, hashes(sq, cube))
		c.Count = 0
		rejects(t, c, "count 0 accepted")
		c = assignRaw(t, shape2, []Leaf{sq, cube}, hashes(sq, cube))
		c.Count = 1 // root of two leaves but count 1
		rejects(t, c, "count/root mismatch accepted")
	})
	t.Run("non-canonical vk encoding", func(t *testing.T) {
		// alpha.x + p encodes the same point but would hash differently
		a := clone(sq)
		x := new(big.Int).SetBytes(a.VK[0:32])
		x.Add(x, fp.Modulus())
		if x.BitLen() > 256 {
			t.Skip("x + p overflows 32 bytes")
		}
		x.FillBytes(a.VK[0:32])
		c := assignRaw(t, shape2, []Leaf{a, cube}, hashes(a, cube))
		rejects(t, c, "non-canonical coordinate accepted")
	})
}

func TestAssignRejectsBadLeaves(t *testing.T) {
	testLeaves(t)
	forged := clone(leafSq)
	forged.Pubs[0][31] ^= 1
	_, _, err := Assign(shape2, []Leaf{leafCube, forged})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBadLeaf || e.Field != "leaves[1].proof" {
		t.Fatalf("want bad_leaf on leaves[1].proof, got %v", err)
	}
	short := clone(leafSq)
	short.VK = short.VK[:len(short.VK)-1]
	if _, _, err = Assign(shape2, []Leaf{short}); !errors.As(err, &e) || e.Field != "leaves[0].vk" {
		t.Fatalf("want leaves[0].vk error, got %v", err)
	}
	big := clone(leafSq)
	for i := range big.Pubs[0] {
		big.Pubs[0][i] = 0xff
	}
	if _, _, err = Assign(shape2, []Leaf{big}); !errors.As(err, &e) || e.Field != "leaves[0].public_inputs[0]" {
		t.Fatalf("want leaves[0].public_inputs[0] error, got %v", err)
	}
	two := sumLeaf(t, 2, 7)
	if _, _, err = Assign(shape2, []Leaf{two}); !errors.As(err, &e) || e.Field != "leaves[0].public_inputs" {
		t.Fatalf("want npub mismatch error, got %v", err)
	}
	if _, _, err = Assign(shape2, []Leaf{leafSq, leafSq, leafSq}); !errors.As(err, &e) || e.Code != CodeBadBatch {
		t.Fatalf("want bad_batch, got %v", err)
	}
	if _, _, err = Assign(shape2, nil); !errors.As(err, &e) || e.Code != CodeBadBatch {
		t.Fatalf("want bad_batch for empty batch, got %v", err)
	}
}

// The statement hash must equal normalizers/statement.py's; the shared vectors live in
// tests/vectors/statement_hash.json (lead-owned). Recompute one by hand here.
func TestStatementHashSpec(t *testing.T) {
	testLeaves(t)
	l := leafSq
	vkHash := keccak256([]byte("sheaf/vk"), []byte{1}, l.VK)
	want := keccak256([]byte("sheaf/statement"), []byte{1, 1}, vkHash, keccak256(l.Pubs[0]))
	if !bytes.Equal(l.StatementHash(), want) {
		t.Fatal("statement hash differs from the spec")
	}
	if len(l.VK) != 64+3*128+4+2*64 || l.VK[451] != 2 {
		t.Fatalf("canonical vk layout wrong: %d bytes", len(l.VK))
	}
}

// TestRealProveBatch1 runs the whole pipeline (compile, INSECURE dev setup into the cache,
// prove, verify, Solidity export). Minutes and several GB: opt-in with SHEAF_RECURSION_PROVE=1.
func TestRealProveBatch1(t *testing.T) {
	if os.Getenv("SHEAF_RECURSION_PROVE") == "" {
		t.Skip("set SHEAF_RECURSION_PROVE=1 (slow: setup + prove of a ~2.6M-constraint circuit)")
	}
	testLeaves(t)
	k, err := Setup(Shape{Batch: 1, NPub: 1}, t.TempDir(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Prove(k, []Leaf{leafCube})
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := DecodeHex(r.Proof)
	if err := VerifyResult(k, hashes(leafCube), proof); err != nil {
		t.Fatalf("outer proof rejected: %v", err)
	}
	if VerifyResult(k, hashes(leafSq), proof) == nil {
		t.Fatal("outer proof accepted for another leaf list")
	}
	var sol bytes.Buffer
	if err := k.ExportSolidity(&sol); err != nil || !bytes.Contains(sol.Bytes(), []byte("function verifyProof")) {
		t.Fatalf("solidity export: %v", err)
	}
}

// TestWriteBatchFixture regenerates testdata/batch_p1.json (real inner proofs of two different
// circuits, INSECURE dev keys): SHEAF_RECURSION_UPDATE=1 go test ./aggregation/ -run TestWriteBatchFixture
// Otherwise it checks the committed fixture still decodes and verifies natively.
func TestWriteBatchFixture(t *testing.T) {
	path := "testdata/batch_p1.json"
	if os.Getenv("SHEAF_RECURSION_UPDATE") != "" {
		testLeaves(t)
		var b BatchJSON
		for _, l := range []Leaf{leafSq, leafCube, leafSq5} {
			lj := LeafJSON{Scheme: "groth16", VK: "0x" + hex.EncodeToString(l.VK), Proof: "0x" + hex.EncodeToString(l.Proof)}
			for _, p := range l.Pubs {
				lj.PublicInputs = append(lj.PublicInputs, "0x"+hex.EncodeToString(p))
			}
			b.Leaves = append(b.Leaves, lj)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeJSON(path, b); err != nil {
			t.Fatal(err)
		}
	}
	var b BatchJSON
	if err := readJSON(path, &b); err != nil {
		t.Fatal(err)
	}
	leaves, err := b.ToLeaves()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Assign(Shape{Batch: 4, NPub: 1}, leaves); err != nil {
		t.Fatalf("fixture leaves invalid: %v", err)
	}
}
