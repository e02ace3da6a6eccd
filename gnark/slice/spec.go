// Package slice proves one quantized dense slice of an ONNX model (Gemm/MatMul + Add + Relu
// layers) with gnark Groth16 or PLONK over BN254.
//
// Statement: the public inputs are exactly [InCommit, OutCommit], commitments to the
// slice's quantized input and output tensors; the weights are circuit constants (so the vk
// binds the model). Consecutive slices chain by commitment: slice i's OutCommit must equal
// slice i+1's InCommit.
//
// Fixed point (all integers; scale S = 2^ScaleBits):
//
//	x, y        at scale S      (real value = int / S)
//	W           at scale S
//	b           at scale S^2    (so acc = W·x + b is at scale S^2)
//	q           = floor((acc + S/2) / S)    round half up (towards +inf), back to scale S
//	y           = max(q, 0) if the layer has Relu, else q
//
// Commitment (spec.commitment): "poseidon-ezkl", the Poseidon sponge ezkl's hashed visibility uses
// (poseidon.go), or "mimc-bn254": MiMC-BN254 (gnark-crypto, Miyaguchi–Preneel) over the field
// elements [n, v_0, ..., v_{n-1}]. Negative integers are p - |v| in both.
package slice

import (
	"encoding/json"
	"fmt"
	"math/big"
	"os"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/mimc"
)

// SpecVersion is the version of the JSON spec written by provers/gnark_backend.py.
const SpecVersion = 1

// Layer is one dense layer: y = act(round(W x + b)).
type Layer struct {
	In     int       `json:"in"`
	Out    int       `json:"out"`
	Weight [][]int64 `json:"weight"` // Out rows of In columns, scale S
	Bias   []int64   `json:"bias"`   // Out values, scale S^2
	Relu   bool      `json:"relu"`
}

// Spec is the slice description plus the witness (input, optional claimed output).
type Spec struct {
	Version   int     `json:"version"`
	Name      string  `json:"name"`
	ScaleBits int     `json:"scale_bits"`
	QBits     int     `json:"q_bits"` // |q| < 2^QBits for every pre-activation (range-checked)
	Layers    []Layer `json:"layers"`
	// Commitment is CommitMiMC or CommitPoseidonEzkl (empty means MiMC).
	Commitment string  `json:"commitment,omitempty"`
	Input      []int64 `json:"input"`
	// ClaimedOutput, when present, is what the prover asserts; a wrong one makes proving fail.
	ClaimedOutput []int64 `json:"claimed_output,omitempty"`
}

// LoadSpec reads and validates a spec file.
func LoadSpec(path string) (*Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("SLICE_SPEC_INVALID: %s: %w", path, err)
	}
	return &s, s.Validate()
}

// Validate checks shapes and parameter ranges, naming the offending field.
func (s *Spec) Validate() error {
	bad := func(field, msg string, a ...any) error {
		return fmt.Errorf("SLICE_SPEC_INVALID: %s: %s", field, fmt.Sprintf(msg, a...))
	}
	if s.Version != SpecVersion {
		return bad("version", "got %d, want %d", s.Version, SpecVersion)
	}
	if s.ScaleBits < 1 || s.ScaleBits > 24 {
		return bad("scale_bits", "%d not in [1, 24]", s.ScaleBits)
	}
	if s.QBits < 2 || s.QBits > 64 {
		return bad("q_bits", "%d not in [2, 64]", s.QBits)
	}
	if s.Commitment != "" && s.Commitment != CommitMiMC && s.Commitment != CommitPoseidonEzkl {
		return bad("commitment", "%q is not %s or %s", s.Commitment, CommitMiMC, CommitPoseidonEzkl)
	}
	if len(s.Layers) == 0 {
		return bad("layers", "empty")
	}
	prev := len(s.Input)
	for i, l := range s.Layers {
		f := fmt.Sprintf("layers[%d]", i)
		if l.In != prev {
			return bad(f+".in", "%d does not match the previous width %d", l.In, prev)
		}
		if l.Out < 1 || len(l.Weight) != l.Out || len(l.Bias) != l.Out {
			return bad(f, "out=%d but %d weight rows and %d biases", l.Out, len(l.Weight), len(l.Bias))
		}
		for j, row := range l.Weight {
			if len(row) != l.In {
				return bad(fmt.Sprintf("%s.weight[%d]", f, j), "%d columns, want %d", len(row), l.In)
			}
		}
		prev = l.Out
	}
	if s.ClaimedOutput != nil && len(s.ClaimedOutput) != prev {
		return bad("claimed_output", "%d values, the slice outputs %d", len(s.ClaimedOutput), prev)
	}
	return nil
}

// OutWidth is the number of output values.
func (s *Spec) OutWidth() int { return s.Layers[len(s.Layers)-1].Out }

// roundShift is floor((acc + 2^(k-1)) / 2^k) on big integers (round half up).
func roundShift(acc *big.Int, k int) *big.Int {
	t := new(big.Int).Add(acc, new(big.Int).Lsh(big.NewInt(1), uint(k-1)))
	// big.Int.Rsh is an arithmetic shift (floor) for negative values too
	return t.Rsh(t, uint(k))
}

// Evaluate runs the integer semantics natively; it errors when a pre-activation leaves the
// range the circuit checks (so the circuit would be unsatisfiable).
func (s *Spec) Evaluate() ([]int64, error) {
	x := make([]*big.Int, len(s.Input))
	for i, v := range s.Input {
		x[i] = big.NewInt(v)
	}
	limit := new(big.Int).Lsh(big.NewInt(1), uint(s.QBits))
	for li, l := range s.Layers {
		y := make([]*big.Int, l.Out)
		for j := 0; j < l.Out; j++ {
			acc := big.NewInt(l.Bias[j])
			for i := 0; i < l.In; i++ {
				acc.Add(acc, new(big.Int).Mul(big.NewInt(l.Weight[j][i]), x[i]))
			}
			q := roundShift(acc, s.ScaleBits)
			if new(big.Int).Abs(q).Cmp(limit) >= 0 {
				return nil, fmt.Errorf("SLICE_RANGE: layers[%d] output %d: |%s| >= 2^q_bits", li, j, q)
			}
			if l.Relu && q.Sign() < 0 {
				q.SetInt64(0)
			}
			y[j] = q
		}
		x = y
	}
	out := make([]int64, len(x))
	for i, v := range x {
		if !v.IsInt64() {
			return nil, fmt.Errorf("SLICE_RANGE: output %d overflows int64", i)
		}
		out[i] = v.Int64()
	}
	return out, nil
}

// Commitment schemes for the slice's input/output tensors.
const (
	CommitMiMC         = "mimc-bn254"
	CommitPoseidonEzkl = "poseidon-ezkl"
)

// Commit is the spec's commitment to a tensor.
func (s *Spec) Commit(values []int64) fr.Element {
	if s.Commitment == CommitPoseidonEzkl {
		return PoseidonEzkl(values)
	}
	return CommitMiMCValues(values)
}

// CommitMiMCValues is the MiMC commitment to a tensor: MiMC(n, v_0, ..., v_{n-1}).
func CommitMiMCValues(values []int64) fr.Element {
	h := mimc.NewFieldHasher()
	elems := make([]fr.Element, 0, len(values)+1)
	var n fr.Element
	n.SetUint64(uint64(len(values)))
	elems = append(elems, n)
	for _, v := range values {
		var e fr.Element
		e.SetInt64(v)
		elems = append(elems, e)
	}
	return h.SumElements(elems)
}
