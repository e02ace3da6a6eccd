package treeagg

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/algebra/native/sw_bls12377"
	stdgroth16 "github.com/consensys/gnark/std/recursion/groth16"
)

// peakRSS is this process's VmHWM in MiB (Linux).
func peakRSS() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			var kb int
			for _, f := range strings.Fields(l)[1:2] {
				for _, ch := range f {
					kb = kb*10 + int(ch-'0')
				}
			}
			return kb / 1024
		}
	}
	return -1
}

// SHEAF_TREEAGG_MEASURE=1 go test ./treeagg/ -run TestMeasure -v -timeout 30m
// R1CS of one merge level per mode (docs/recursion-tree.md).
func TestMeasure(t *testing.T) {
	if os.Getenv("SHEAF_TREEAGG_MEASURE") == "" {
		t.Skip("set SHEAF_TREEAGG_MEASURE=1")
	}
	f := getFixture(t)
	res := map[string]any{}
	for _, m := range []struct {
		name string
		mode Mode
	}{{"tree_only", treeOnly}, {"separate", Separate}, {"batched", Batched}} {
		c, err := NewMergeCircuit(f.vk, 2, m.mode)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
		if err != nil {
			t.Fatal(err)
		}
		if m.mode != treeOnly {
			assertChildShape(t, ccs)
		}
		res[m.name] = map[string]any{"r1cs": ccs.GetNbConstraints(), "compile_s": time.Since(t0).Seconds(),
			"peak_rss_mib": peakRSS()}
		t.Logf("%s: %d R1CS, compile %.1fs, peak RSS %d MiB", m.name, ccs.GetNbConstraints(),
			time.Since(t0).Seconds(), peakRSS())
		runtime.GC()
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	t.Logf("%s", out)
}

// SHEAF_TREEAGG_PROVE=batched|separate go test ./treeagg/ -run TestRealProve -v -timeout 60m
// One real merge level: compile, dev setup, prove (native hash-to-field, i.e. as a child of the
// next level), verify; times and peak RSS. Heavy (minutes, GBs): opt-in only.
func TestRealProve(t *testing.T) {
	which := os.Getenv("SHEAF_TREEAGG_PROVE")
	if which == "" {
		t.Skip("set SHEAF_TREEAGG_PROVE=batched|separate")
	}
	mode := Batched
	if which == "separate" {
		mode = Separate
	}
	f := getFixture(t)
	c, err := NewMergeCircuit(f.vk, 2, mode)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	tc := time.Since(t0)
	assertChildShape(t, ccs)
	t.Logf("compiled %d R1CS in %s, peak RSS %d MiB", ccs.GetNbConstraints(), tc, peakRSS())
	t0 = time.Now()
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Since(t0)
	t.Logf("setup %s, peak RSS %d MiB", ts, peakRSS())
	a, _, err := c.Assign(f.children[0], &f.children[2])
	if err != nil {
		t.Fatal(err)
	}
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	proof, err := groth16.Prove(ccs, pk, w, ChildProverOption())
	if err != nil {
		t.Fatal(err)
	}
	tp := time.Since(t0)
	pw, _ := w.Public()
	if err := groth16.Verify(proof, vk, pw, ChildVerifierOption()); err != nil {
		t.Fatal(err)
	}
	t.Logf("RESULT mode=%s r1cs=%d compile=%s setup=%s prove=%s peak_rss_mib=%d", which,
		ccs.GetNbConstraints(), tc.Round(time.Second), ts.Round(time.Second), tp.Round(time.Second), peakRSS())
}

// assertChildShape: a merge proof must itself be a valid child of the next level: 3 public
// inputs and exactly one BSB22 commitment over no public input (NewMergeCircuit's requirement).
func assertChildShape(t *testing.T, ccs constraint.ConstraintSystem) {
	t.Helper()
	cm, ok := ccs.GetCommitments().(constraint.Groth16Commitments)
	if !ok || len(cm) != 1 || len(cm[0].PublicAndCommitmentCommitted) != 0 || ccs.GetNbPublicVariables() != 1+NbChildPublic {
		t.Fatalf("merge circuit is not a valid child shape: %d public, commitments %+v", ccs.GetNbPublicVariables(), ccs.GetCommitments())
	}
}

// twoChainMerge verifies two BLS12-377 Groth16 proofs (child layout, fixed vk) inside BW6-761,
// whose scalar field is BLS12-377's base field: native (non-emulated) pairing arithmetic.
type twoChainMerge struct {
	Proofs [2]stdgroth16.Proof[sw_bls12377.G1Affine, sw_bls12377.G2Affine]
	Pubs   [2]stdgroth16.Witness[sw_bls12377.ScalarField]
	vk     stdgroth16.VerifyingKey[sw_bls12377.G1Affine, sw_bls12377.G2Affine, sw_bls12377.GT] `gnark:"-"`
}

func (c *twoChainMerge) Define(api frontend.API) error {
	v, err := stdgroth16.NewVerifier[sw_bls12377.ScalarField, sw_bls12377.G1Affine, sw_bls12377.G2Affine, sw_bls12377.GT](api)
	if err != nil {
		return err
	}
	for i := range c.Proofs {
		if err := v.AssertProof(c.vk, c.Proofs[i], c.Pubs[i], stdgroth16.WithSubgroupCheck()); err != nil {
			return err
		}
	}
	return nil
}

// The 2-chain comparison row of docs/recursion-tree.md (verification only, no tree logic).
func TestMeasure2Chain(t *testing.T) {
	if os.Getenv("SHEAF_TREEAGG_MEASURE") == "" {
		t.Skip("set SHEAF_TREEAGG_MEASURE=1")
	}
	inner, err := frontend.Compile(ecc.BLS12_377.ScalarField(), r1cs.NewBuilder, &childCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	_, vk, err := groth16.Setup(inner)
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := stdgroth16.ValueOfVerifyingKeyFixed[sw_bls12377.G1Affine, sw_bls12377.G2Affine, sw_bls12377.GT](vk)
	if err != nil {
		t.Fatal(err)
	}
	c := &twoChainMerge{vk: fixed}
	for i := range c.Proofs {
		c.Proofs[i] = stdgroth16.PlaceholderProof[sw_bls12377.G1Affine, sw_bls12377.G2Affine](inner)
		c.Pubs[i] = stdgroth16.PlaceholderWitness[sw_bls12377.ScalarField](inner)
	}
	t0 := time.Now()
	ccs, err := frontend.Compile(ecc.BW6_761.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2-chain: 2 BLS12-377 proofs verified in BW6-761: %d R1CS, compile %s", ccs.GetNbConstraints(), time.Since(t0))
}
