package aggregation

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bn254"
	"github.com/consensys/gnark/std/hash/mimc"
	"github.com/consensys/gnark/std/hash/poseidon2"
	"github.com/consensys/gnark/std/hash/sha3"
	"github.com/consensys/gnark/std/math/uints"
	stdgroth16 "github.com/consensys/gnark/std/recursion/groth16"
)

// Constraint measurements for docs/recursion.md. Opt-in (each compile takes tens of seconds
// and GBs): SHEAF_RECURSION_MEASURE=1 go test ./aggregation/ -run TestMeasure/<name> -v

func measureEnabled(t *testing.T) {
	if os.Getenv("SHEAF_RECURSION_MEASURE") == "" {
		t.Skip("set SHEAF_RECURSION_MEASURE=1 to run constraint measurements")
	}
}

func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "?"
}

func compileCount(t *testing.T, name string, c frontend.Circuit) int {
	start := time.Now()
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	n := ccs.GetNbConstraints()
	fmt.Printf("MEASURE %s r1cs=%d compile=%s peakRSS=%s\n", name, n, time.Since(start).Round(time.Millisecond), peakRSS())
	return n
}

// stockVerifier is gnark's own recursion verifier (vk witness or fixed), for reference.
type stockVerifier struct {
	Proof   stdgroth16.Proof[sw_bn254.G1Affine, sw_bn254.G2Affine]
	VK      stdgroth16.VerifyingKey[sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl]
	Witness stdgroth16.Witness[sw_bn254.ScalarField]
}

func (c *stockVerifier) Define(api frontend.API) error {
	v, err := stdgroth16.NewVerifier[sw_bn254.ScalarField, sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl](api)
	if err != nil {
		return err
	}
	return v.AssertProof(c.VK, c.Proof, c.Witness)
}

// pairingChecks: K independent PairingChecks of M pairs each (witness points).
type pairingChecks struct {
	P [][]sw_bn254.G1Affine
	Q [][]sw_bn254.G2Affine
}

func (c *pairingChecks) Define(api frontend.API) error {
	pr, err := sw_bn254.NewPairing(api)
	if err != nil {
		return err
	}
	for k := range c.P {
		ps := make([]*sw_bn254.G1Affine, len(c.P[k]))
		qs := make([]*sw_bn254.G2Affine, len(c.Q[k]))
		for i := range ps {
			ps[i], qs[i] = &c.P[k][i], &c.Q[k][i]
		}
		if err := pr.PairingCheck(ps, qs); err != nil {
			return err
		}
	}
	return nil
}

func newPairingChecks(k, m int) *pairingChecks {
	c := &pairingChecks{P: make([][]sw_bn254.G1Affine, k), Q: make([][]sw_bn254.G2Affine, k)}
	for i := range c.P {
		c.P[i] = make([]sw_bn254.G1Affine, m)
		c.Q[i] = make([]sw_bn254.G2Affine, m)
	}
	return c
}

// keccakBytes: keccak over N witness bytes.
type keccakBytes struct{ In []frontend.Variable }

func (c *keccakBytes) Define(api frontend.API) error {
	bapi, err := uints.NewBytes(api)
	if err != nil {
		return err
	}
	h, err := sha3.NewLegacyKeccak256(api)
	if err != nil {
		return err
	}
	in := make([]uints.U8, len(c.In))
	for i := range c.In {
		in[i] = bapi.ValueOf(c.In[i])
	}
	h.Write(in)
	out := h.Sum()
	api.AssertIsDifferent(bapi.ValueUnchecked(out[0]), 256)
	return nil
}

// friendlyHash: MiMC or Poseidon2 over N native field elements (option (b): a vk digest over the
// vk's limbs packed 3 x 64 bits per element: 24 elements for P=1).
type friendlyHash struct {
	In       []frontend.Variable
	poseidon bool
}

func (c *friendlyHash) Define(api frontend.API) error {
	var h interface {
		Write(...frontend.Variable)
		Sum() frontend.Variable
	}
	if c.poseidon {
		p, err := poseidon2.New(api)
		if err != nil {
			return err
		}
		h = p
	} else {
		m, err := mimc.New(api)
		if err != nil {
			return err
		}
		h = m
	}
	h.Write(c.In...)
	api.AssertIsDifferent(h.Sum(), 0)
	return nil
}

func TestMeasure(t *testing.T) {
	measureEnabled(t)
	sq := squareLeaf(t, 3)
	for _, tc := range []struct {
		name string
		c    func() frontend.Circuit
	}{
		{"sheaf_n1_p1", func() frontend.Circuit { return NewCircuit(Shape{Batch: 1, NPub: 1}) }},
		{"sheaf_n2_p1", func() frontend.Circuit { return NewCircuit(Shape{Batch: 2, NPub: 1}) }},
		{"sheaf_n1_p2", func() frontend.Circuit { return NewCircuit(Shape{Batch: 1, NPub: 2}) }},
		{"sheaf_n4_p1", func() frontend.Circuit { return NewCircuit(Shape{Batch: 4, NPub: 1}) }},
		{"sheaf_nobind_n1_p1", func() frontend.Circuit { c := NewCircuit(Shape{Batch: 1, NPub: 1}); c.noBinding = true; return c }},
		{"sheaf_nobind_n1_p2", func() frontend.Circuit { c := NewCircuit(Shape{Batch: 1, NPub: 2}); c.noBinding = true; return c }},
		{"sheaf_plonk1_p1", func() frontend.Circuit { return NewCircuit(Shape{Batch: 1, NPub: 1, Plonk: 1}) }},
		{"sheaf_plonk1_p2", func() frontend.Circuit { return NewCircuit(Shape{Batch: 1, NPub: 2, Plonk: 1}) }},
		{"sheaf_nobind_plonk1_p1", func() frontend.Circuit {
			c := NewCircuit(Shape{Batch: 1, NPub: 1, Plonk: 1})
			c.noBinding = true
			return c
		}},
		{"sheaf_g2_plonk1_p1", func() frontend.Circuit { return NewCircuit(Shape{Batch: 3, NPub: 1, Plonk: 1}) }},
		{"stock_vkwitness_p1", func() frontend.Circuit { return stockCircuit(t, sq, false) }},
		{"stock_vkfixed_p1", func() frontend.Circuit { return stockCircuit(t, sq, true) }},
		{"pairing_1x4", func() frontend.Circuit { return newPairingChecks(1, 4) }},
		{"pairing_2x4", func() frontend.Circuit { return newPairingChecks(2, 4) }},
		{"pairing_1x8", func() frontend.Circuit { return newPairingChecks(1, 8) }},
		{"mimc_24", func() frontend.Circuit { return &friendlyHash{In: make([]frontend.Variable, 24)} }},
		{"poseidon2_24", func() frontend.Circuit { return &friendlyHash{In: make([]frontend.Variable, 24), poseidon: true} }},
		{"keccak_136", func() frontend.Circuit { return &keccakBytes{In: make([]frontend.Variable, 135)} }},
		{"keccak_680", func() frontend.Circuit { return &keccakBytes{In: make([]frontend.Variable, 679)} }},
	} {
		t.Run(tc.name, func(t *testing.T) { compileCount(t, tc.name, tc.c()) })
	}
}

func stockCircuit(t *testing.T, l Leaf, fixed bool) frontend.Circuit {
	// rebuild a gnark vk for the placeholder shapes; the stock verifier needs a compiled inner ccs
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &squareCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	c := &stockVerifier{
		Proof:   stdgroth16.PlaceholderProof[sw_bn254.G1Affine, sw_bn254.G2Affine](ccs),
		VK:      stdgroth16.PlaceholderVerifyingKey[sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl](ccs),
		Witness: stdgroth16.PlaceholderWitness[sw_bn254.ScalarField](ccs),
	}
	if fixed {
		_, vk, err := groth16.Setup(ccs)
		if err != nil {
			t.Fatal(err)
		}
		if c.VK, err = stdgroth16.ValueOfVerifyingKeyFixed[sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl](vk); err != nil {
			t.Fatal(err)
		}
	}
	_ = l
	return c
}
