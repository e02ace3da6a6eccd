package slice

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/mimc"
	"github.com/consensys/gnark/std/rangecheck"
)

func init() {
	solver.RegisterHint(divModHint, geHint)
}

// Circuit proves OutCommit = Commit(f(x)) and InCommit = Commit(x) for the dense layers of spec.
type Circuit struct {
	InCommit  frontend.Variable `gnark:",public"`
	OutCommit frontend.Variable `gnark:",public"`
	X         []frontend.Variable
	Y         []frontend.Variable

	spec *Spec
}

// NewCircuit returns a placeholder circuit for compiling spec.
func NewCircuit(spec *Spec) *Circuit {
	return &Circuit{
		X:    make([]frontend.Variable, len(spec.Input)),
		Y:    make([]frontend.Variable, spec.OutWidth()),
		spec: spec,
	}
}

// Assignment builds the full witness from the spec's input and the claimed output.
func Assignment(spec *Spec, output []int64) *Circuit {
	c := NewCircuit(spec)
	for i, v := range spec.Input {
		c.X[i] = v
	}
	for i, v := range output {
		c.Y[i] = v
	}
	c.InCommit = spec.Commit(spec.Input)
	c.OutCommit = spec.Commit(output)
	return c
}

// plainAPI hides frontend.Committer so std/rangecheck falls back to bit decomposition: the
// proofs then carry no BSB22 commitment, which keeps them verifiable by plain Groth16
// verifiers (Solidity export, groth16py, in-circuit recursion) without special options.
type plainAPI struct{ frontend.API }

func (c *Circuit) commitIn(api frontend.API, values []frontend.Variable) (frontend.Variable, error) {
	if c.spec.Commitment == CommitPoseidonEzkl {
		return poseidonEzklVar(api, values), nil
	}
	h, err := mimc.NewMiMC(api)
	if err != nil {
		return nil, err
	}
	h.Write(len(values))
	h.Write(values...)
	return h.Sum(), nil
}

// Define implements frontend.Circuit.
func (c *Circuit) Define(api frontend.API) error {
	s := c.spec
	rc := rangecheck.New(plainAPI{api})
	in, err := c.commitIn(api, c.X)
	if err != nil {
		return err
	}
	api.AssertIsEqual(in, c.InCommit)

	scale := new(big.Int).Lsh(big.NewInt(1), uint(s.ScaleBits))
	half := new(big.Int).Rsh(scale, 1)
	bound := new(big.Int).Lsh(big.NewInt(1), uint(s.QBits))
	// shifted = acc + S/2 + bound*S >= 0 whenever |q| < bound
	offset := new(big.Int).Add(half, new(big.Int).Mul(bound, scale))

	x := c.X
	for li, l := range s.Layers {
		y := make([]frontend.Variable, l.Out)
		for j := 0; j < l.Out; j++ {
			// constant weights: the dot product is a linear combination (no multiplication gates)
			var acc frontend.Variable = l.Bias[j]
			for i := 0; i < l.In; i++ {
				if l.Weight[j][i] != 0 {
					acc = api.Add(acc, api.Mul(l.Weight[j][i], x[i]))
				}
			}
			shifted := api.Add(acc, offset)
			qr, err := api.Compiler().NewHint(divModHint, 2, shifted, scale)
			if err != nil {
				return fmt.Errorf("layer %d: %w", li, err)
			}
			qShift, r := qr[0], qr[1]
			// shifted = qShift*S + r, 0 <= r < S, 0 <= qShift < 2*bound: unique floor division
			api.AssertIsEqual(shifted, api.Add(api.Mul(qShift, scale), r))
			rc.Check(r, s.ScaleBits)
			rc.Check(qShift, s.QBits+1)
			q := api.Sub(qShift, bound)
			if l.Relu {
				ge, err := api.Compiler().NewHint(geHint, 1, qShift, bound)
				if err != nil {
					return err
				}
				pos := ge[0]
				api.AssertIsBoolean(pos)
				// pos=1 => q in [0, bound); pos=0 => -1-q in [0, bound), i.e. q < 0
				rc.Check(api.Select(pos, q, api.Sub(-1, q)), s.QBits)
				y[j] = api.Select(pos, q, 0)
			} else {
				y[j] = q
			}
		}
		x = y
	}
	for i := range x {
		api.AssertIsEqual(x[i], c.Y[i])
	}
	out, err := c.commitIn(api, c.Y)
	if err != nil {
		return err
	}
	api.AssertIsEqual(out, c.OutCommit)
	return nil
}

// divModHint: inputs (a, m) with a >= 0 -> (a / m, a mod m).
func divModHint(_ *big.Int, inputs []*big.Int, outputs []*big.Int) error {
	if inputs[1].Sign() == 0 {
		return fmt.Errorf("division by zero")
	}
	outputs[0].DivMod(inputs[0], inputs[1], outputs[1])
	return nil
}

// geHint: inputs (a, b) -> 1 if a >= b else 0 (as integers in [0, p)).
func geHint(_ *big.Int, inputs []*big.Int, outputs []*big.Int) error {
	if inputs[0].Cmp(inputs[1]) >= 0 {
		outputs[0].SetUint64(1)
	} else {
		outputs[0].SetUint64(0)
	}
	return nil
}
