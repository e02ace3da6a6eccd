package tree

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/algebra/native/sw_bls12377"
	"github.com/consensys/gnark/std/math/uints"
	stdgroth16 "github.com/consensys/gnark/std/recursion/groth16"
)

// peakRSS is this process's VmHWM in MiB (Linux).
func peakRSS() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return -1
}

// TestMeasure compiles ONE circuit per process (so the peak RSS is that circuit's):
//
//	SHEAF_TREE_MEASURE=leaf:K | merge:F | bw6merge:F  go test ./tree/ -run TestMeasure -v -timeout 60m
//
// and prints one JSON line "MEASURE {...}" (bench/recursion_tree.sh collects them into
// bench/results/recursion_tree_compile.json). Compile only: R1CS, compile seconds, peak RSS.
func TestMeasure(t *testing.T) {
	spec := os.Getenv("SHEAF_TREE_MEASURE")
	if spec == "" {
		t.Skip("set SHEAF_TREE_MEASURE=leaf:K|merge:F|bw6merge:F")
	}
	kind, arg, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(arg)
	if err != nil {
		t.Fatal(err)
	}
	var c frontend.Circuit
	field := ecc.BN254.ScalarField()
	switch kind {
	case "leaf":
		if c, err = NewLeafCircuit(LeafShape{K: n, NPub: 1}); err != nil {
			t.Fatal(err)
		}
	case "merge":
		// The child vk's shape is what matters (3 public inputs, one commitment); its values
		// are constants of the same size whatever the child circuit.
		child, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &childCircuit{})
		if err != nil {
			t.Fatal(err)
		}
		_, vk, err := groth16.Setup(child)
		if err != nil {
			t.Fatal(err)
		}
		if c, err = NewMergeCircuit(vk, n, 4); err != nil {
			t.Fatal(err)
		}
	case "bw6merge":
		c, field = newBW6Merge(t, n), ecc.BW6_761.ScalarField()
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	t0 := time.Now()
	ccs, err := frontend.Compile(field, r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(t0).Seconds()
	if kind != "bw6merge" {
		assertTreeShape(t, ccs)
	}
	out, _ := json.Marshal(map[string]any{"circuit": spec, "r1cs": ccs.GetNbConstraints(),
		"compile_s": float64(int(el*10)) / 10, "compile_peak_rss_mib": peakRSS()})
	t.Logf("MEASURE %s", out)
}

// assertTreeShape: every tree proof must be a valid merge child: 3 public inputs and exactly one
// BSB22 commitment over no public input (NewMergeCircuit's requirement).
func assertTreeShape(t *testing.T, ccs constraint.ConstraintSystem) {
	t.Helper()
	cm, ok := ccs.GetCommitments().(constraint.Groth16Commitments)
	if !ok || len(cm) != 1 || len(cm[0].PublicAndCommitmentCommitted) != 0 || ccs.GetNbPublicVariables() != 1+NbPublic {
		t.Fatalf("not a tree child shape: %d public, commitments %+v", ccs.GetNbPublicVariables(), ccs.GetCommitments())
	}
}

// bw6Merge is design (b)'s merge for comparison: F BLS12-377 Groth16 children (tree layout,
// fixed vk) verified NATIVELY inside BW6-761, plus the same keccak fold of their roots.
type bw6Merge struct {
	Proofs []stdgroth16.Proof[sw_bls12377.G1Affine, sw_bls12377.G2Affine]
	Pubs   []stdgroth16.Witness[sw_bls12377.ScalarField]
	Roots  [][32]frontend.Variable
	vk     stdgroth16.VerifyingKey[sw_bls12377.G1Affine, sw_bls12377.G2Affine, sw_bls12377.GT] `gnark:"-"`
}

func newBW6Merge(t *testing.T, f int) *bw6Merge {
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
	c := &bw6Merge{vk: fixed, Roots: make([][32]frontend.Variable, f)}
	for i := 0; i < f; i++ {
		c.Proofs = append(c.Proofs, stdgroth16.PlaceholderProof[sw_bls12377.G1Affine, sw_bls12377.G2Affine](inner))
		c.Pubs = append(c.Pubs, stdgroth16.PlaceholderWitness[sw_bls12377.ScalarField](inner))
	}
	return c
}

func (c *bw6Merge) Define(api frontend.API) error {
	v, err := stdgroth16.NewVerifier[sw_bls12377.ScalarField, sw_bls12377.G1Affine, sw_bls12377.G2Affine, sw_bls12377.GT](api)
	if err != nil {
		return err
	}
	for i := range c.Proofs {
		if err := v.AssertProof(c.vk, c.Proofs[i], c.Pubs[i], stdgroth16.WithSubgroupCheck()); err != nil {
			return err
		}
	}
	bapi, err := uints.NewBytes(api)
	if err != nil {
		return err
	}
	roots := make([][]uints.U8, len(c.Roots))
	for i := range c.Roots {
		roots[i] = make([]uints.U8, 32)
		for b := range roots[i] {
			roots[i][b] = bapi.ValueOf(c.Roots[i][b])
		}
	}
	root := foldRoots(api, bapi, roots, len(c.Roots))
	for b := range root {
		api.AssertIsEqual(bapi.ValueUnchecked(root[b]), c.Roots[0][b])
	}
	return nil
}
