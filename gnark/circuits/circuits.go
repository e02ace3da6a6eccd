// Package circuits holds the small test circuits Sheaf uses for self-tests and fixtures.
package circuits

import (
	"fmt"

	"github.com/consensys/gnark/frontend"
)

// MulChain has N public inputs X[i] and one secret S; it asserts X[i] == S^(i+2) + i,
// so every public input is bound to the secret and no two fixtures share a statement shape.
type MulChain struct {
	X []frontend.Variable `gnark:",public"`
	S frontend.Variable
}

// NewMulChain returns a circuit definition with n public inputs (for compilation).
func NewMulChain(n int) *MulChain {
	return &MulChain{X: make([]frontend.Variable, n)}
}

// Define implements frontend.Circuit.
func (c *MulChain) Define(api frontend.API) error {
	acc := api.Mul(c.S, c.S)
	for i := range c.X {
		api.AssertIsEqual(c.X[i], api.Add(acc, i))
		acc = api.Mul(acc, c.S)
	}
	return nil
}

// MulChainAssignment returns a satisfying assignment for n public inputs and secret s.
func MulChainAssignment(n int, s uint64) *MulChain {
	a := &MulChain{X: make([]frontend.Variable, n), S: s}
	acc := newU(s)
	acc.mul(s)
	for i := 0; i < n; i++ {
		a.X[i] = acc.plus(uint64(i))
		acc.mul(s)
	}
	return a
}

// Committed has public inputs X, Y and a secret S; it commits to S (and X) with one
// Pedersen (BSB22) commitment and uses the commitment as a challenge.
type Committed struct {
	X frontend.Variable `gnark:",public"`
	Y frontend.Variable `gnark:",public"`
	S frontend.Variable
}

// Define implements frontend.Circuit.
func (c *Committed) Define(api frontend.API) error {
	committer, ok := api.(frontend.Committer)
	if !ok {
		return fmt.Errorf("builder does not implement frontend.Committer")
	}
	cm, err := committer.Commit(c.S, c.X)
	if err != nil {
		return err
	}
	// the commitment is random-ish: use it in a constraint that holds for any value
	api.AssertIsDifferent(api.Add(cm, 0), api.Add(cm, 1))
	api.AssertIsEqual(c.Y, api.Add(api.Mul(c.S, c.S), c.X))
	return nil
}

// CommittedAssignment returns a satisfying assignment for Committed.
func CommittedAssignment(x, s uint64) *Committed {
	return &Committed{X: x, Y: s*s + x, S: s}
}
