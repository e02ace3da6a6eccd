package aggregation

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"runtime"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/backend/solidity"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/scs"
	recplonk "github.com/consensys/gnark/std/recursion/plonk"
	"github.com/consensys/gnark/test/unsafekzg"
	"github.com/sheaf-zk/sheaf/gnark/verify"
)

// The mixed circuit: one Groth16 slot and one PLONK slot (~7.4M R1CS, ~40 s, ~8 GB), shared by
// the PLONK soundness cases; each case solves the real constraint system.
var (
	shapeMixed = Shape{Batch: 2, NPub: 1, Plonk: 1}
	ccsMixed   = &lazyCCS{shape: shapeMixed}
)

// plonkProofs proves the padding circuit's statement X0 = x for each x under ONE PLONK setup,
// with the given transcript. unsafekzg caches its SRS by size in memory (so one circuit always
// gets the same vk); toxic != 0 picks another SRS, hence another vk of the same circuit.
func plonkProofs(t testing.TB, transcript string, toxic int64, xs ...int) []Leaf {
	t.Helper()
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), scs.NewBuilder, &paddingCircuit{X: make([]frontend.Variable, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var opts []unsafekzg.Option
	if toxic != 0 {
		opts = append(opts, unsafekzg.WithToxicValue(big.NewInt(toxic)))
	}
	srs, lag, err := unsafekzg.NewSRS(ccs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	pk, vk, err := plonk.Setup(ccs, srs, lag)
	if err != nil {
		t.Fatal(err)
	}
	f := ecc.BN254.ScalarField()
	opt := recplonk.GetNativeProverOptions(f, f)
	if transcript == verify.TranscriptSolidity {
		opt = solidity.WithProverTargetSolidityVerifier(backend.PLONK)
	}
	var out []Leaf
	for _, x := range xs {
		y := 5
		w, err := frontend.NewWitness(&paddingCircuit{X: []frontend.Variable{x}, Y: y, Z: (x + y + 7) * y}, f)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := plonk.Prove(ccs, pk, w, opt)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := w.Public()
		l, err := LeafFromGnarkPlonk(vk, pf, pub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// plonkSlot is a raw PLONK slot: canonical vk bytes (possibly tampered), proof, public inputs.
type plonkSlot struct {
	canonical []byte
	leaf      Leaf // proof and pubs
}

func rawPlonk(t *testing.T, l Leaf) plonkSlot {
	t.Helper()
	canonical, _, err := PlonkCanonicalVK(l.VK)
	if err != nil {
		t.Fatal(err)
	}
	return plonkSlot{canonical: canonical, leaf: l}
}

// assignMixed builds a mixed-shape witness without native checks: g16 in the Groth16 slot, pl in
// the PLONK slot, CountG = countG, public inputs committing to claimed.
func assignMixed(t *testing.T, g16 Leaf, pl plonkSlot, countG int, claimed [][]byte) *Circuit {
	t.Helper()
	c := NewCircuit(shapeMixed)
	p, err := parseLoose(&g16)
	if err != nil {
		t.Fatal(err)
	}
	assignSlot(&c.Leaves[0], &g16, p)
	_, vk, err := PlonkCanonicalVK(pl.leaf.VK)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := verify.ParseGnarkPlonkProof(pl.leaf.Proof, vk)
	if err != nil {
		t.Fatal(err)
	}
	if err := assignPlonkSlot(&c.PlonkLeaves[0], &pl.leaf, &plonkParsed{canonical: pl.canonical, proof: pf.Gnark()}); err != nil {
		t.Fatal(err)
	}
	c.CountG[0] = countG
	pub := PublicInputs(claimed)
	c.RootHi, c.RootLo, c.Count = pub[0], pub[1], pub[2]
	return c
}

func solvesMixed(t *testing.T, c *Circuit) error {
	t.Helper()
	return solvesWith(t, ccsMixed.get(t), c)
}

func rejectsMixed(t *testing.T, c *Circuit, what string) {
	t.Helper()
	rejectsWith(t, ccsMixed.get(t), c, what)
}

func TestPlonkSlotSoundness(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a 7.4M-constraint circuit")
	}
	// keep one big constraint system in memory at a time (~5 GB + ~8 GB otherwise): the batch-2
	// one is recompiled by the tests that need it after this one
	ccs2.release()
	defer ccsMixed.release()
	testLeaves(t)
	sq := leafSq
	pls := plonkProofs(t, verify.TranscriptRecursion, 0, 4, 9)
	pl, pl9 := pls[0], pls[1]
	other := plonkProofs(t, verify.TranscriptRecursion, 12345, 4)[0] // same circuit and statement, another SRS (vk)
	if bytes.Equal(other.VK, pl.VK) {
		t.Fatal("test setup: the substitute vk equals the original")
	}
	t.Logf("mixed shape %+v: %d R1CS", shapeMixed, ccsMixed.get(t).GetNbConstraints())

	t.Run("valid Groth16 + PLONK", func(t *testing.T) {
		c, hs, err := Assign(shapeMixed, []Leaf{sq, pl})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hs[1], pl.StatementHash()) || hs[1] == nil {
			t.Fatal("Assign returned a wrong PLONK leaf hash")
		}
		if err := solvesMixed(t, c); err != nil {
			t.Fatalf("valid mixed batch rejected: %v", err)
		}
	})
	t.Run("committed fixture: vk with Qk at infinity (circuit without constants)", func(t *testing.T) {
		d := "../../tests/fixtures/gnark/plonk_n1_recursion/"
		vkb, err1 := os.ReadFile(d + "vk.bin")
		pfb, err2 := os.ReadFile(d + "proof.bin")
		pubs, err3 := os.ReadFile(d + "public.json")
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		_, vk, err := PlonkCanonicalVK(vkb)
		if err != nil || !vk.Qk.IsInfinity() {
			t.Fatalf("fixture vk: %v (Qk at infinity: %v)", err, err == nil && vk.Qk.IsInfinity())
		}
		var hexPubs []string
		if err := json.Unmarshal(pubs, &hexPubs); err != nil {
			t.Fatal(err)
		}
		fx := Leaf{Scheme: SchemePlonk, VK: vkb, Proof: pfb}
		for _, h := range hexPubs {
			b, _ := DecodeHex(h)
			fx.Pubs = append(fx.Pubs, b)
		}
		c, _, err := Assign(shapeMixed, []Leaf{sq, fx})
		if err != nil {
			t.Fatal(err)
		}
		if err := solvesMixed(t, c); err != nil {
			t.Fatalf("valid PLONK leaf with an infinity selector commitment rejected: %v", err)
		}
	})
	t.Run("PLONK only, Groth16 slot padded", func(t *testing.T) {
		c, hs, err := Assign(shapeMixed, []Leaf{pl})
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) != 1 || c.Count.(*big.Int).Int64() != 1 || c.CountG[0] != 0 {
			t.Fatal("padding must not enter the committed list")
		}
		if err := solvesMixed(t, c); err != nil {
			t.Fatalf("PLONK-only batch rejected: %v", err)
		}
	})
	t.Run("Groth16 only, PLONK slot padded", func(t *testing.T) {
		c, _, err := Assign(shapeMixed, []Leaf{sq})
		if err != nil {
			t.Fatal(err)
		}
		if err := solvesMixed(t, c); err != nil {
			t.Fatalf("Groth16-only batch rejected: %v", err)
		}
	})
	t.Run("PLONK unproven statement", func(t *testing.T) {
		forged := clone(pl)
		forged.Scheme, forged.VK, forged.Proof = SchemePlonk, pl.VK, pl.Proof
		forged.Pubs[0] = bytes.Clone(pl9.Pubs[0]) // pl's proof for pl9's statement
		c := assignMixed(t, sq, rawPlonk(t, forged), 1, [][]byte{sq.StatementHash(), forged.StatementHash()})
		rejectsMixed(t, c, "PLONK proof accepted for another statement")
	})
	t.Run("PLONK vk substituted", func(t *testing.T) {
		sub := clone(pl)
		sub.Scheme, sub.VK = SchemePlonk, other.VK // pl's proof under another setup's vk
		c := assignMixed(t, sq, rawPlonk(t, sub), 1, [][]byte{sq.StatementHash(), sub.StatementHash()})
		rejectsMixed(t, c, "PLONK proof accepted under a substituted vk")
		// honest slot, leaf hash relabelled with the other vk
		c = assignMixed(t, sq, rawPlonk(t, pl), 1, [][]byte{sq.StatementHash(), other.StatementHash()})
		rejectsMixed(t, c, "PLONK leaf hash with another vk accepted")
	})
	t.Run("PLONK vk bytes tampered (size not a power of two)", func(t *testing.T) {
		s := rawPlonk(t, pl)
		s.canonical = bytes.Clone(s.canonical)
		s.canonical[plonkOffSize+7] |= 1
		c := assignMixed(t, sq, s, 1, [][]byte{sq.StatementHash(), pl.StatementHash()})
		rejectsMixed(t, c, "odd domain size accepted")
	})
	t.Run("leaves reordered or CountG lied about", func(t *testing.T) {
		c := assignMixed(t, sq, rawPlonk(t, pl), 1, [][]byte{pl.StatementHash(), sq.StatementHash()})
		rejectsMixed(t, c, "reordered leaf list accepted")
		c = assignMixed(t, sq, rawPlonk(t, pl), 0, [][]byte{sq.StatementHash(), pl.StatementHash()})
		rejectsMixed(t, c, "CountG = 0 with the Groth16 leaf claimed first accepted")
		c = assignMixed(t, sq, rawPlonk(t, pl), 2, [][]byte{sq.StatementHash(), pl.StatementHash()})
		rejectsMixed(t, c, "CountG beyond the Groth16 slots accepted")
	})
	t.Run("Solidity-transcript PLONK proof", func(t *testing.T) {
		sol := plonkProofs(t, verify.TranscriptSolidity, 0, 4)[0]
		_, _, err := Assign(shapeMixed, []Leaf{sq, sol})
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeBadLeaf || e.Field != "leaves[1].proof" {
			t.Fatalf("want bad_leaf on leaves[1].proof, got %v", err)
		}
		c := assignMixed(t, sq, rawPlonk(t, sol), 1, [][]byte{sq.StatementHash(), sol.StatementHash()})
		rejectsMixed(t, c, "Solidity-transcript PLONK proof accepted in-circuit")
	})
}

func TestAssignMixedOrderAndCapacity(t *testing.T) {
	testLeaves(t)
	pl := plonkProofs(t, verify.TranscriptRecursion, 0, 4)[0]
	var e *Error
	if _, _, err := Assign(shapeMixed, []Leaf{pl, leafSq}); !errors.As(err, &e) || e.Code != CodeBadBatch || e.Field != "leaves[1]" {
		t.Fatalf("want bad_batch for PLONK before Groth16, got %v", err)
	}
	if _, _, err := Assign(shapeMixed, []Leaf{pl, pl}); !errors.As(err, &e) || e.Code != CodeBadBatch {
		t.Fatalf("want bad_batch for two PLONK leaves in one PLONK slot, got %v", err)
	}
	if _, _, err := Assign(Shape{Batch: 2, NPub: 1}, []Leaf{leafSq, pl}); !errors.As(err, &e) || e.Code != CodeBadBatch {
		t.Fatalf("want bad_batch for a PLONK leaf in a Groth16-only circuit, got %v", err)
	}
	b := BatchJSON{Leaves: []LeafJSON{{Scheme: "halo2", VK: "0x", Proof: "0x"}}}
	if _, err := b.ToLeaves(); !errors.As(err, &e) || e.Field != "leaves[0].scheme" {
		t.Fatalf("want leaves[0].scheme error, got %v", err)
	}
}

func TestToLeavesPlonkCanonicalVK(t *testing.T) {
	pl := plonkProofs(t, verify.TranscriptRecursion, 0, 4)[0]
	canonical, _, err := PlonkCanonicalVK(pl.VK)
	if err != nil {
		t.Fatal(err)
	}
	lj := LeafJSON{Scheme: SchemePlonk, VK: hexs(pl.VK), Proof: hexs(pl.Proof), PublicInputs: []string{hexs(pl.Pubs[0])},
		CanonicalVK: hexs(canonical)}
	ls, err := (&BatchJSON{Leaves: []LeafJSON{lj}}).ToLeaves()
	if err != nil || !ls[0].IsPlonk() || !bytes.Equal(ls[0].StatementHash(), pl.StatementHash()) {
		t.Fatalf("valid plonk leaf: %v", err)
	}
	var e *Error
	bad := lj
	wrong := bytes.Clone(canonical)
	wrong[len(wrong)-1] ^= 1
	bad.CanonicalVK = hexs(wrong)
	if _, err := (&BatchJSON{Leaves: []LeafJSON{bad}}).ToLeaves(); !errors.As(err, &e) || e.Field != "leaves[0].canonical_vk" {
		t.Fatalf("want leaves[0].canonical_vk error, got %v", err)
	}
	g := LeafJSON{Scheme: SchemeGroth16, VK: "0x00", Proof: "0x00", CanonicalVK: hexs(canonical)}
	if _, err := (&BatchJSON{Leaves: []LeafJSON{g}}).ToLeaves(); !errors.As(err, &e) || e.Field != "leaves[0].canonical_vk" {
		t.Fatalf("want canonical_vk refused on a groth16 leaf, got %v", err)
	}
	// the PLONK statement hash is normalizers/statement.py's: keccak("sheaf/vk" || 0x02 || canonical)
	want := keccak256([]byte("sheaf/statement"), []byte{1, 2}, keccak256([]byte("sheaf/vk"), []byte{2}, canonical),
		keccak256(pl.Pubs[0]))
	if !bytes.Equal(pl.StatementHash(), want) || len(canonical) != PlonkVKLen {
		t.Fatal("PLONK statement hash or canonical vk length differs from the spec")
	}
}

// The circuit hash keys the cached proving keys and pins the deployed verifier: compiling the same
// shape twice must give the same constraint system (no map iteration order, no randomness).
func TestCompileIsDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a 4.8M-constraint circuit twice")
	}
	ccs2.release()
	s := Shape{Batch: 1, NPub: 1, Plonk: 1}
	hash := func() string {
		ccs, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		h, err := hashCCS(ccs)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a := hash()
	runtime.GC()
	if b := hash(); a != b {
		t.Fatalf("two compiles of %+v differ: %s vs %s", s, a[:16], b[:16])
	}
}
