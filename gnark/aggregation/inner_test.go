package aggregation

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

// Tiny inner circuits: two different circuits with one public input and one with two, so a
// batch mixes verifying keys.
type squareCircuit struct {
	X frontend.Variable
	Y frontend.Variable `gnark:",public"`
}

func (c *squareCircuit) Define(api frontend.API) error {
	api.AssertIsEqual(api.Mul(c.X, c.X), c.Y)
	return nil
}

type cubeCircuit struct {
	X frontend.Variable
	Y frontend.Variable `gnark:",public"`
}

func (c *cubeCircuit) Define(api frontend.API) error {
	api.AssertIsEqual(api.Mul(c.X, c.X, c.X), c.Y)
	return nil
}

type sumCircuit struct {
	X    frontend.Variable
	Y, Z frontend.Variable `gnark:",public"`
}

func (c *sumCircuit) Define(api frontend.API) error {
	api.AssertIsEqual(api.Add(api.Mul(c.X, c.X), c.Y), c.Z)
	return nil
}

// innerProof makes a real gnark Groth16 proof (fresh dev setup) and converts it to a Leaf.
func innerProof(t testing.TB, placeholder, assignment frontend.Circuit) Leaf {
	t.Helper()
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, placeholder)
	if err != nil {
		t.Fatal(err)
	}
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		t.Fatal(err)
	}
	w, err := frontend.NewWitness(assignment, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	proof, err := groth16.Prove(ccs, pk, w)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := w.Public()
	if err != nil {
		t.Fatal(err)
	}
	if err := groth16.Verify(proof, vk, pub); err != nil {
		t.Fatal(err)
	}
	l, err := LeafFromGnark(vk, proof, pub)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func squareLeaf(t testing.TB, x int) Leaf {
	return innerProof(t, &squareCircuit{}, &squareCircuit{X: x, Y: x * x})
}

func cubeLeaf(t testing.TB, x int) Leaf {
	return innerProof(t, &cubeCircuit{}, &cubeCircuit{X: x, Y: x * x * x})
}

func sumLeaf(t testing.TB, x, y int) Leaf {
	return innerProof(t, &sumCircuit{}, &sumCircuit{X: x, Y: y, Z: x*x + y})
}
