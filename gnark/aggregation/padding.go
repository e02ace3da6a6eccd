package aggregation

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"
	recplonk "github.com/consensys/gnark/std/recursion/plonk"
	"github.com/consensys/gnark/test/unsafekzg"
)

// pad fills the slots after the nG real Groth16 and nP real PLONK leaves. A kind with at least
// one real leaf repeats its last one; a kind with none gets a padding proof of a tiny circuit.
// Padding slots are verified like any other but lie outside the first Count tree positions, so
// which valid proof fills them does not matter (and the padding keys' toxic waste, known to this
// process, buys nothing: a forged padding proof could not enter the root).
func pad(c *Circuit, s Shape, nG, nP int) error {
	if nG < len(c.Leaves) {
		if nG == 0 {
			l, err := paddingLeaf(SchemeGroth16, s.NPub)
			if err != nil {
				return err
			}
			p, err := l.parse(0)
			if err != nil {
				return &Error{Code: CodeInternal, Field: "padding", Message: err.Error()}
			}
			assignSlot(&c.Leaves[0], &l, p)
			nG = 1
		}
		for i := nG; i < len(c.Leaves); i++ {
			c.Leaves[i] = c.Leaves[nG-1]
		}
	}
	if nP < len(c.PlonkLeaves) {
		if nP == 0 {
			l, err := paddingLeaf(SchemePlonk, s.NPub)
			if err != nil {
				return err
			}
			p, err := l.parsePlonk(0)
			if err != nil {
				return &Error{Code: CodeInternal, Field: "padding", Message: err.Error()}
			}
			if err := assignPlonkSlot(&c.PlonkLeaves[0], &l, p); err != nil {
				return &Error{Code: CodeInternal, Field: "padding", Message: err.Error()}
			}
			nP = 1
		}
		for i := nP; i < len(c.PlonkLeaves); i++ {
			c.PlonkLeaves[i] = c.PlonkLeaves[nP-1]
		}
	}
	return nil
}

// paddingCircuit: (X0 + Y + 7) * Y == Z, a tiny circuit using every PLONK selector.
type paddingCircuit struct {
	X []frontend.Variable `gnark:",public"`
	Y frontend.Variable
	Z frontend.Variable
}

func (c *paddingCircuit) Define(api frontend.API) error {
	api.AssertIsEqual(api.Mul(api.Add(c.X[0], c.Y, 7), c.Y), c.Z)
	return nil
}

func paddingAssignment(nPub int) *paddingCircuit {
	a := &paddingCircuit{X: make([]frontend.Variable, nPub), Y: 3, Z: (1 + 3 + 7) * 3}
	for i := range a.X {
		a.X[i] = i + 1
	}
	return a
}

var paddingLeaves sync.Map // "scheme/npub" -> Leaf

// paddingLeaf proves the padding circuit once per process, scheme and public-input count.
func paddingLeaf(scheme string, nPub int) (Leaf, error) {
	key := fmt.Sprintf("%s/%d", scheme, nPub)
	if v, ok := paddingLeaves.Load(key); ok {
		return v.(Leaf), nil
	}
	l, err := makePaddingLeaf(scheme, nPub)
	if err != nil {
		return Leaf{}, &Error{Code: CodeInternal, Field: "padding", Message: fmt.Sprintf("%s padding proof: %v", scheme, err)}
	}
	paddingLeaves.Store(key, l)
	return l, nil
}

func makePaddingLeaf(scheme string, nPub int) (Leaf, error) {
	placeholder := &paddingCircuit{X: make([]frontend.Variable, nPub)}
	w, err := frontend.NewWitness(paddingAssignment(nPub), ecc.BN254.ScalarField())
	if err != nil {
		return Leaf{}, err
	}
	pub, err := w.Public()
	if err != nil {
		return Leaf{}, err
	}
	if scheme == SchemeGroth16 {
		ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, placeholder)
		if err != nil {
			return Leaf{}, err
		}
		pk, vk, err := groth16.Setup(ccs)
		if err != nil {
			return Leaf{}, err
		}
		pf, err := groth16.Prove(ccs, pk, w)
		if err != nil {
			return Leaf{}, err
		}
		return LeafFromGnark(vk, pf, pub)
	}
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), scs.NewBuilder, placeholder)
	if err != nil {
		return Leaf{}, err
	}
	srs, lagrange, err := unsafekzg.NewSRS(ccs)
	if err != nil {
		return Leaf{}, err
	}
	pk, vk, err := plonk.Setup(ccs, srs, lagrange)
	if err != nil {
		return Leaf{}, err
	}
	f := ecc.BN254.ScalarField()
	pf, err := plonk.Prove(ccs, pk, w, recplonk.GetNativeProverOptions(f, f))
	if err != nil {
		return Leaf{}, err
	}
	return LeafFromGnarkPlonk(vk, pf, pub)
}

// LeafFromGnarkPlonk is the Leaf of a gnark BN254 PLONK proof (recursion transcript).
func LeafFromGnarkPlonk(vk plonk.VerifyingKey, proof plonk.Proof, pub witness.Witness) (Leaf, error) {
	var vkb, pfb bytes.Buffer
	if _, err := vk.WriteRawTo(&vkb); err != nil {
		return Leaf{}, err
	}
	if _, err := proof.WriteRawTo(&pfb); err != nil {
		return Leaf{}, err
	}
	vec, ok := pub.Vector().(fr.Vector)
	if !ok {
		return Leaf{}, fmt.Errorf("public witness is not a BN254 vector")
	}
	l := Leaf{Scheme: SchemePlonk, VK: vkb.Bytes(), Proof: pfb.Bytes()}
	for i := range vec {
		b := vec[i].Bytes()
		l.Pubs = append(l.Pubs, b[:])
	}
	return l, nil
}
