package treeagg

import (
	"math/big"
	"sync"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/test"
)

// childCircuit stands in for an aggregation outer circuit: the same public layout
// [root_hi, root_lo, count] and, like it, one BSB22 commitment over internal wires only
// (aggregation's commitment comes from range checks). The merge circuit only sees the vk
// shape, so its constraint count and logic are the same as with the real aggregation vk.
type childCircuit struct {
	RootHi, RootLo, Count frontend.Variable `gnark:",public"`
	X                     frontend.Variable
}

func (c *childCircuit) Define(api frontend.API) error {
	r, err := api.(frontend.Committer).Commit(c.X)
	if err != nil {
		return err
	}
	api.AssertIsDifferent(r, 0)
	api.AssertIsEqual(c.X, api.Add(c.RootHi, c.RootLo, c.Count))
	return nil
}

type fixture struct {
	vk       groth16.VerifyingKey
	children []Child // counts: 2, 2, 1 (childCap 2)
	foreign  Child   // a valid proof under a DIFFERENT vk (same circuit, other setup)
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func proveChild(ccs constraint.ConstraintSystem, pk groth16.ProvingKey, vk groth16.VerifyingKey, root [32]byte, count uint64) (Child, error) {
	ch := Child{RootHi: new(big.Int).SetBytes(root[:16]), RootLo: new(big.Int).SetBytes(root[16:]), Count: count}
	x := new(big.Int).Add(ch.RootHi, ch.RootLo)
	x.Add(x, new(big.Int).SetUint64(count))
	w, err := frontend.NewWitness(&childCircuit{RootHi: ch.RootHi, RootLo: ch.RootLo, Count: count, X: x},
		ecc.BN254.ScalarField())
	if err != nil {
		return ch, err
	}
	if ch.Proof, err = groth16.Prove(ccs, pk, w, ChildProverOption()); err != nil {
		return ch, err
	}
	pw, err := w.Public()
	if err != nil {
		return ch, err
	}
	return ch, groth16.Verify(ch.Proof, vk, pw, ChildVerifierOption())
}

func getFixture(t *testing.T) fixture {
	t.Helper()
	fixOnce.Do(func() {
		ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &childCircuit{})
		if err != nil {
			fixErr = err
			return
		}
		pk, vk, err := groth16.Setup(ccs)
		if err != nil {
			fixErr = err
			return
		}
		fix.vk = vk
		for i, cnt := range []uint64{2, 2, 1} {
			root := keccak256([]byte{byte(i)})
			ch, err := proveChild(ccs, pk, vk, root, cnt)
			if err != nil {
				fixErr = err
				return
			}
			fix.children = append(fix.children, ch)
		}
		pk2, vk2, err := groth16.Setup(ccs)
		if err != nil {
			fixErr = err
			return
		}
		fix.foreign, fixErr = proveChild(ccs, pk2, vk2, keccak256([]byte{9}), 2)
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

// solved runs the test engine on a FRESH circuit (the engine writes into the circuit it runs).
func solved(t *testing.T, mode Mode, assignment frontend.Circuit) error {
	t.Helper()
	c, err := NewMergeCircuit(getFixture(t).vk, 2, mode)
	if err != nil {
		t.Fatal(err)
	}
	return test.IsSolved(c, assignment, ecc.BN254.ScalarField())
}

func TestMergeValid(t *testing.T) {
	f := getFixture(t)
	for _, mode := range []Mode{Separate, Batched} {
		c, err := NewMergeCircuit(f.vk, 2, mode)
		if err != nil {
			t.Fatal(err)
		}
		a, parent, err := c.Assign(f.children[0], &f.children[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := solved(t, mode, a); err != nil {
			t.Fatalf("mode %d: valid merge rejected: %v", mode, err)
		}
		if parent.Count != 4 {
			t.Fatalf("count %d", parent.Count)
		}
	}
}

// An absent right child (odd number of nodes at a level) whose left child is itself partial:
// the parent is the left child unchanged.
func TestMergeAbsentRight(t *testing.T) {
	f := getFixture(t)
	c, err := NewMergeCircuit(f.vk, 2, Separate)
	if err != nil {
		t.Fatal(err)
	}
	a, parent, err := c.Assign(f.children[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	if parent.Root() != f.children[2].Root() || parent.Count != 1 {
		t.Fatalf("absent right: parent %x/%d", parent.Root(), parent.Count)
	}
	if err := solved(t, Separate, a); err != nil {
		t.Fatalf("absent right rejected: %v", err)
	}
	// The dropped (copied) right child must not count.
	bad := *a
	bad.Count = 2
	if solved(t, Separate, &bad) == nil {
		t.Fatal("count 2 for a single 1-leaf child accepted")
	}
}

func TestMergeRejects(t *testing.T) {
	f := getFixture(t)
	sep, err := NewMergeCircuit(f.vk, 2, Separate)
	if err != nil {
		t.Fatal(err)
	}
	bat, err := NewMergeCircuit(f.vk, 2, Batched)
	if err != nil {
		t.Fatal(err)
	}
	valid, _, err := sep.Assign(f.children[0], &f.children[2])
	if err != nil {
		t.Fatal(err)
	}
	validB, _, err := bat.Assign(f.children[0], &f.children[2])
	if err != nil {
		t.Fatal(err)
	}
	one := big.NewInt(1)
	cases := []struct {
		name string
		c    *MergeCircuit
		mut  func(a *MergeCircuit) error
	}{
		// tree logic (fails before the proofs are checked)
		{"wrong parent root", sep, func(a *MergeCircuit) error {
			a.RootLo = new(big.Int).Xor(a.RootLo.(*big.Int), one)
			return nil
		}},
		{"wrong parent count", sep, func(a *MergeCircuit) error { a.Count = 4; return nil }},
		{"left child not full", sep, func(a *MergeCircuit) error {
			b, _, err := sep.Assign(f.children[2], &f.children[0]) // partial child on the left
			*a = *b
			return err
		}},
		{"right dropped but flagged present=0 with its count", sep, func(a *MergeCircuit) error {
			a.RightPresent = 0 // root/count still those of the pair
			return nil
		}},
		// proof checks: a child root that its proof does not prove, a proof from another vk
		{"wrong child root (separate)", sep, func(a *MergeCircuit) error {
			p := f.children[2]
			p.RootHi = new(big.Int).Xor(p.RootHi, one)
			b, _, err := sep.Assign(f.children[0], &p) // parent recomputed from the forged root
			*a = *b
			return err
		}},
		{"wrong child root (batched)", bat, func(a *MergeCircuit) error {
			p := f.children[2]
			p.RootHi = new(big.Int).Xor(p.RootHi, one)
			b, _, err := bat.Assign(f.children[0], &p)
			*a = *b
			return err
		}},
		{"child proof under another vk (batched)", bat, func(a *MergeCircuit) error {
			b, _, err := bat.Assign(f.children[0], &f.foreign)
			*a = *b
			return err
		}},
		{"proofs swapped between children (separate)", sep, func(a *MergeCircuit) error {
			a.Left, a.Right = a.Right, a.Left
			return nil
		}},
	}
	for _, tc := range cases {
		base := *valid
		if tc.c == bat {
			base = *validB
		}
		a := base
		if err := tc.mut(&a); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err := solved(t, tc.c.mode, &a)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		t.Logf("%s: rejected: %.160s", tc.name, err)
	}
}
