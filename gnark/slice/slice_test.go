package slice

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tinySpecBase() *Spec {
	return &Spec{
		Version: SpecVersion, Name: "t", ScaleBits: 4, QBits: 20,
		Layers: []Layer{
			{In: 3, Out: 2, Weight: [][]int64{{16, -8, 3}, {-16, 5, 0}}, Bias: []int64{128, -7}, Relu: true},
			{In: 2, Out: 2, Weight: [][]int64{{1, 2}, {-3, 4}}, Bias: []int64{0, 9}, Relu: false},
		},
		Input: []int64{5, -3, 7},
	}
}

func tinySpec() *Spec { return tinySpecBase() }

func TestEvaluateRounding(t *testing.T) {
	s := tinySpec()
	// layer 0: acc0 = 80+24+21+128 = 253 -> floor((253+8)/16) = 16 ; acc1 = -80-15-7 = -102 -> floor(-94/16) = -6 -> relu 0
	// layer 1: acc = 16*1 + 0 = 16 -> floor(24/16) = 1 ; acc = -48 + 9 = -39 -> floor(-31/16) = -2
	y, err := s.Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	if len(y) != 2 || y[0] != 1 || y[1] != -2 {
		t.Fatalf("got %v want [1 -2]", y)
	}
}

func TestProveVerifyAndReject(t *testing.T) {
	cache := t.TempDir()
	for i, bk := range []string{Groth16, Plonk, Groth16} {
		commitment := CommitPoseidonEzkl
		if i == 2 {
			commitment = CommitMiMC
		}
		tinySpec := func() *Spec { s := tinySpecBase(); s.Commitment = commitment; return s }
		out := filepath.Join(t.TempDir(), bk)
		res, err := Prove(tinySpec(), bk, TargetSolidity, cache, out)
		if err != nil {
			t.Fatalf("%s prove: %v", bk, err)
		}
		if len(res.PublicInputs) != 2 {
			t.Fatalf("%s: %d public inputs", bk, len(res.PublicInputs))
		}
		s0 := tinySpec()
		y, _ := s0.Evaluate()
		want := s0.Commit(y)
		if res.PublicInputs[1] != "0x"+hex.EncodeToString(want.Marshal()) {
			t.Fatalf("%s/%s: out commitment %s is not Commit(output)", bk, commitment, res.PublicInputs[1])
		}
		if err := Verify(bk, TargetSolidity, res.ProofPath, res.VKPath, res.PublicPath); err != nil {
			t.Fatalf("%s verify: %v", bk, err)
		}
		// flip one byte of the output commitment in the public witness: must be rejected
		pub, _ := os.ReadFile(res.PublicPath)
		pub[len(pub)-1] ^= 1
		bad := filepath.Join(out, "bad.bin")
		_ = os.WriteFile(bad, pub, 0o644)
		if err := Verify(bk, TargetSolidity, res.ProofPath, res.VKPath, bad); err == nil {
			t.Fatalf("%s: tampered public input accepted", bk)
		}
		// a wrong claimed output makes the constraint system unsatisfiable
		s := tinySpec()
		s.ClaimedOutput = []int64{2, -2}
		if _, err := Prove(s, bk, TargetSolidity, cache, filepath.Join(out, "wrong")); err == nil ||
			!strings.Contains(err.Error(), "SLICE_UNSATISFIED") {
			t.Fatalf("%s: wrong output: err = %v", bk, err)
		}
		// second run reuses cached keys
		res2, err := Prove(tinySpec(), bk, TargetSolidity, cache, out)
		if err != nil || !res2.KeysCached {
			t.Fatalf("%s: cached run: %v cached=%v", bk, err, res2 != nil && res2.KeysCached)
		}
	}
}

func TestPlonkRecursionTarget(t *testing.T) {
	out := t.TempDir()
	res, err := Prove(tinySpec(), Plonk, TargetRecursion, t.TempDir(), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(Plonk, TargetRecursion, res.ProofPath, res.VKPath, res.PublicPath); err != nil {
		t.Fatal(err)
	}
	// transcripts differ: a recursion-target proof is not valid for the Solidity transcript
	if err := Verify(Plonk, TargetSolidity, res.ProofPath, res.VKPath, res.PublicPath); err == nil {
		t.Fatal("recursion-target proof accepted with the Solidity transcript")
	}
}

func TestValidateNamesField(t *testing.T) {
	s := tinySpec()
	s.Layers[1].In = 5
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "layers[1].in") {
		t.Fatalf("err = %v", err)
	}
}
