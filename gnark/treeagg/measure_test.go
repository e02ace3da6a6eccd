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
