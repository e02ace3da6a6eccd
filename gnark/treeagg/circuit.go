// Package treeagg is a prototype of tree recursion over gnark/aggregation: a BN254-in-BN254
// Groth16 merge circuit that verifies two child proofs made with ONE fixed verifying key and
// exposes the parent Merkle node in the same public-input layout as the children,
// [root_hi, root_lo, count] (Groth16AggregationAdapter.publicInputs), so a merge proof is itself
// a valid child of the next level (with that level's vk) and the top one goes to the registry.
// Design and measurements: docs/recursion-tree.md.
package treeagg

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	bn254 "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/algopts"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_emulated"
	"github.com/consensys/gnark/std/commitments/pedersen"
	"github.com/consensys/gnark/std/hash/mimc"
	"github.com/consensys/gnark/std/hash/sha3"
	"github.com/consensys/gnark/std/math/emulated"
	"github.com/consensys/gnark/std/math/emulated/emparams"
	"github.com/consensys/gnark/std/math/uints"
	"github.com/consensys/gnark/std/recursion"
	stdgroth16 "github.com/consensys/gnark/std/recursion/groth16"
	xsha3 "golang.org/x/crypto/sha3"
)

// NbChildPublic is the child public-input count: root_hi, root_lo, count.
const NbChildPublic = 3

type (
	proofT = stdgroth16.Proof[sw_bn254.G1Affine, sw_bn254.G2Affine]
	vkT    = stdgroth16.VerifyingKey[sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl]
	frEl   = emulated.Element[emparams.BN254Fr]
)

// Mode selects how the two child proofs are checked.
type Mode int

const (
	// Separate: gnark's stock verifier per child (each: a 3-pair pairing with the final
	// exponentiation compared to the precomputed e(alpha, beta), plus the child's BSB22
	// commitment PoK as its own 2-pair check).
	Separate Mode = iota
	// Batched: both children's Groth16 equations and both commitment PoKs folded into ONE
	// 7-pair PairingCheck with a random linear combination (challenge from the commit API).
	Batched
	treeOnly // tree logic without proof checks (measurements only)
)

// MergeCircuit verifies Left and Right (child proofs under the fixed vk) and outputs
//
//	root  = RightPresent ? keccak(root_L || root_R) : root_L
//	count = count_L + RightPresent * count_R,  with count_L == ChildCap if RightPresent
//	                                            (a present right child needs a full left one).
//
// This is Merkle.sol's tree composed along full power-of-two subtrees (see the doc). An
// absent right child still carries a verifying proof (a copy of the left) so the circuit shape
// is fixed; it is outside the tree, like aggregation's padding slots.
type MergeCircuit struct {
	Left, Right        proofT
	LeftPub, RightPub  [NbChildPublic]frontend.Variable // [root_hi, root_lo, count] natively
	RightPresent       frontend.Variable
	RootHi, RootLo     frontend.Variable `gnark:",public"`
	Count              frontend.Variable `gnark:",public"`
	vk                 vkT               // constant: ValueOfVerifyingKeyFixed
	alpha              bn254.G1Affine    // native vk parts for the batched mode
	beta, gamma, delta bn254.G2Affine
	childCap           int
	mode               Mode
}

// NewMergeCircuit fixes the child vk (a BN254 Groth16 vk with 3 public inputs and at most one
// BSB22 commitment, as aggregation's outer proofs have) and the child capacity (leaves per
// full child: aggregation's batch N at level 1, doubled per level).
func NewMergeCircuit(childVK groth16.VerifyingKey, childCap int, mode Mode) (*MergeCircuit, error) {
	vk, ok := childVK.(*groth16bn254.VerifyingKey)
	if !ok {
		return nil, fmt.Errorf("child vk: expected a BN254 Groth16 vk, got %T", childVK)
	}
	if childCap < 1 || childCap&(childCap-1) != 0 {
		return nil, fmt.Errorf("childCap: %d is not a power of two", childCap)
	}
	nCommit := len(vk.PublicAndCommitmentCommitted)
	if nCommit > 1 || len(vk.G1.K) != 1+NbChildPublic+nCommit {
		return nil, fmt.Errorf("child vk: want %d public inputs and <= 1 commitment, got %d K points, %d commitments",
			NbChildPublic, len(vk.G1.K), nCommit)
	}
	if mode == Batched && (nCommit != 1 || len(vk.PublicAndCommitmentCommitted[0]) != 0) {
		return nil, fmt.Errorf("child vk: batched mode expects exactly one commitment over no public input")
	}
	fixed, err := stdgroth16.ValueOfVerifyingKeyFixed[sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl](childVK)
	if err != nil {
		return nil, err
	}
	c := &MergeCircuit{vk: fixed, alpha: vk.G1.Alpha, beta: vk.G2.Beta, gamma: vk.G2.Gamma, delta: vk.G2.Delta,
		childCap: childCap, mode: mode}
	c.Left = stdgroth16.Proof[sw_bn254.G1Affine, sw_bn254.G2Affine]{
		Commitments: make([]pedersen.Commitment[sw_bn254.G1Affine], nCommit)}
	c.Right = stdgroth16.Proof[sw_bn254.G1Affine, sw_bn254.G2Affine]{
		Commitments: make([]pedersen.Commitment[sw_bn254.G1Affine], nCommit)}
	return c, nil
}

// Child is one child proof with its public inputs [root_hi, root_lo, count].
type Child struct {
	Proof  groth16.Proof
	RootHi *big.Int
	RootLo *big.Int
	Count  uint64
}

// Root is the child's 32-byte Merkle root.
func (ch Child) Root() [32]byte {
	var r [32]byte
	ch.RootHi.FillBytes(r[:16])
	ch.RootLo.FillBytes(r[16:])
	return r
}

// Assign builds a full assignment for c (right == nil: absent right child, the left proof is reused)
// and returns it with the parent's public values.
func (c *MergeCircuit) Assign(left Child, right *Child) (*MergeCircuit, Child, error) {
	// Only the exported (witness) fields: the fixed vk lives in the circuit definition, and a
	// solver mutates the circuit it runs, so assignments share nothing with it.
	a := MergeCircuit{}
	var err error
	if a.Left, err = stdgroth16.ValueOfProof[sw_bn254.G1Affine, sw_bn254.G2Affine](left.Proof); err != nil {
		return nil, Child{}, fmt.Errorf("left proof: %w", err)
	}
	a.LeftPub = [NbChildPublic]frontend.Variable{left.RootHi, left.RootLo, left.Count}
	parent := left
	r := left
	a.RightPresent = 0
	if right != nil {
		r = *right
		a.RightPresent = 1
		lr, rr := left.Root(), right.Root()
		node := keccak256(append(lr[:], rr[:]...))
		parent = Child{RootHi: new(big.Int).SetBytes(node[:16]), RootLo: new(big.Int).SetBytes(node[16:]),
			Count: left.Count + right.Count}
	}
	if a.Right, err = stdgroth16.ValueOfProof[sw_bn254.G1Affine, sw_bn254.G2Affine](r.Proof); err != nil {
		return nil, Child{}, fmt.Errorf("right proof: %w", err)
	}
	a.RightPub = [NbChildPublic]frontend.Variable{r.RootHi, r.RootLo, r.Count}
	a.RootHi, a.RootLo, a.Count = parent.RootHi, parent.RootLo, parent.Count
	return &a, parent, nil
}

func (c *MergeCircuit) Define(api frontend.API) error {
	bapi, err := uints.NewBytes(api)
	if err != nil {
		return err
	}
	fr, err := emulated.NewField[emparams.BN254Fr](api)
	if err != nil {
		return err
	}
	api.AssertIsBoolean(c.RightPresent)
	// Child public inputs: native values, range-checked to their widths, re-encoded as
	// emulated scalars for the verifier and as bytes for keccak.
	countBits := 1
	for 1<<countBits <= c.childCap {
		countBits++
	}
	var pubs [2][]frEl
	var roots [2][]uints.U8
	for i, p := range [2][NbChildPublic]frontend.Variable{c.LeftPub, c.RightPub} {
		hi := api.ToBinary(p[0], 128)
		lo := api.ToBinary(p[1], 128)
		cnt := api.ToBinary(p[2], countBits)
		pubs[i] = []frEl{*fr.FromBits(hi...), *fr.FromBits(lo...), *fr.FromBits(cnt...)}
		roots[i] = append(beBytes(api, bapi, hi), beBytes(api, bapi, lo)...)
	}

	// Tree (before the proofs, so a bad node fails fast in tests): the left child must be a full subtree so the two roots compose (doc: odd counts), unless the right one is absent.
	// An absent right child lets a partial left through unchanged (the last node of a level
	// with an odd number of nodes); a partial node can then only ever be a right child.
	api.AssertIsEqual(api.Mul(c.RightPresent, api.Sub(c.LeftPub[2], c.childCap)), 0)
	node := keccakU8(api, append(append([]uints.U8{}, roots[0]...), roots[1]...))
	out := make([]uints.U8, 32)
	for b := range out {
		out[b] = bapi.Select(c.RightPresent, node[b], roots[0][b])
	}
	api.AssertIsEqual(c.RootHi, packBE(api, bapi, out[:16]))
	api.AssertIsEqual(c.RootLo, packBE(api, bapi, out[16:]))
	api.AssertIsEqual(c.Count, api.Add(c.LeftPub[2], api.Mul(c.RightPresent, c.RightPub[2])))

	switch c.mode {
	case treeOnly: // measurement only: NOT sound
	case Separate:
		v, err := stdgroth16.NewVerifier[sw_bn254.ScalarField, sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl](api)
		if err != nil {
			return err
		}
		for i, pr := range []proofT{c.Left, c.Right} {
			w := stdgroth16.Witness[sw_bn254.ScalarField]{Public: pubs[i]}
			if err := v.AssertProof(c.vk, pr, w, stdgroth16.WithCompleteArithmetic(), stdgroth16.WithSubgroupCheck()); err != nil {
				return fmt.Errorf("child %d: %w", i, err)
			}
		}
	case Batched:
		if err := c.assertBatched(api, fr, pubs); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown mode %d", c.mode)
	}

	return nil
}

// assertBatched checks, with rho random (rho^0..rho^3 weighting the four equations),
//
//	e(A0,B0) e(rho A1,B1) e(K0 + rho K1, -gamma) e(C0 + rho C1, -delta) e(-(1+rho) alpha, beta)
//	  e(rho^2 D0 + rho^3 D1, -G/sigma) e(rho^2 P0 + rho^3 P1, G) == 1
//
// where Ki = IC0 + sum x_ij IC_j + h_i IC_4 + D_i and h_i is the commitment's hash-to-field.
// rho is a MiMC Fiat-Shamir hash of every proof limb and public input (the vk is constant),
// cut to 128 bits so the scalar muls are half length (soundness error ~2^-128).
func (c *MergeCircuit) assertBatched(api frontend.API, fr *emulated.Field[emparams.BN254Fr], pubs [2][]frEl) error {
	curve, err := sw_emulated.New[emparams.BN254Fp, emparams.BN254Fr](api, sw_emulated.GetBN254Params())
	if err != nil {
		return err
	}
	pairing, err := sw_bn254.NewPairing(api)
	if err != nil {
		return err
	}
	proofs := []proofT{c.Left, c.Right}
	var limbs []frontend.Variable
	addG1 := func(p *sw_bn254.G1Affine) { limbs = append(limbs, p.X.Limbs...); limbs = append(limbs, p.Y.Limbs...) }
	for i, p := range proofs {
		addG1(&p.Ar)
		addG1(&p.Krs)
		addG1(&p.Commitments[0].G1El)
		addG1(&p.CommitmentPok.G1El)
		for _, e := range []*emulated.Element[emparams.BN254Fp]{&p.Bs.P.X.A0, &p.Bs.P.X.A1, &p.Bs.P.Y.A0, &p.Bs.P.Y.A1} {
			limbs = append(limbs, e.Limbs...)
		}
		for _, x := range pubs[i] {
			limbs = append(limbs, x.Limbs...)
		}
		pairing.AssertIsOnG1(&p.Ar)
		pairing.AssertIsOnG1(&p.Krs)
		pairing.AssertIsOnG1(&p.Commitments[0].G1El)
		pairing.AssertIsOnG1(&p.CommitmentPok.G1El)
		pairing.AssertIsOnG2(&p.Bs)
	}
	// Fiat-Shamir: rho = MiMC(every proof limb and public input), limbs packed 3 per element.
	// (The commit API is not usable here: its callback runs after the range checker closed,
	// and the emulated arithmetic below needs range checks.)
	h, err := mimc.NewMiMC(api)
	if err != nil {
		return err
	}
	for k := 0; k < len(limbs); k += 3 {
		var acc frontend.Variable = 0
		for j := min(k+3, len(limbs)) - 1; j >= k; j-- {
			acc = api.Add(api.Mul(acc, new(big.Int).Lsh(big.NewInt(1), 64)), limbs[j])
		}
		h.Write(acc)
	}
	rho := fr.FromBits(api.ToBinary(h.Sum(), 254)[:128]...)
	rho2 := fr.Mul(rho, rho)
	rho3 := fr.Mul(rho2, rho)
	short := algopts.WithNbScalarBits(128)

	// Commitment hash-to-field, exactly as std/recursion/groth16 (native prover options).
	hs := make([]*frEl, 2)
	for i, p := range proofs {
		h, err := recursion.NewHash(api, emparams.BN254Fr{}.Modulus(), true)
		if err != nil {
			return err
		}
		h.Write(curve.MarshalG1(p.Commitments[0].G1El)...)
		hs[i] = fr.FromBits(api.ToBinary(h.Sum())...)
	}
	// K0 + rho K1 as one MSM over the fixed IC points plus the two D terms.
	one := fr.One()
	ic := c.vk.G1.K
	pts := []*sw_bn254.G1Affine{&ic[0], &ic[1], &ic[2], &ic[3], &ic[4], &proofs[1].Commitments[0].G1El}
	sc := []*frEl{fr.Add(one, rho)}
	for j := 0; j < NbChildPublic; j++ {
		sc = append(sc, fr.Add(&pubs[0][j], fr.Mul(rho, &pubs[1][j])))
	}
	sc = append(sc, fr.Add(hs[0], fr.Mul(rho, hs[1])), rho)
	kSum, err := curve.MultiScalarMul(pts, sc, algopts.WithCompleteArithmetic())
	if err != nil {
		return err
	}
	kSum = curve.AddUnified(kSum, &proofs[0].Commitments[0].G1El)

	rA1 := curve.ScalarMul(&proofs[1].Ar, rho, short, algopts.WithCompleteArithmetic())
	cSum := curve.AddUnified(&proofs[0].Krs, curve.ScalarMul(&proofs[1].Krs, rho, short, algopts.WithCompleteArithmetic()))
	alpha := sw_bn254.NewG1Affine(c.alpha)
	negAlpha := curve.Neg(curve.ScalarMul(&alpha, fr.Add(one, rho), algopts.WithCompleteArithmetic()))
	dSum, err := curve.MultiScalarMul(
		[]*sw_bn254.G1Affine{&proofs[0].Commitments[0].G1El, &proofs[1].Commitments[0].G1El}, []*frEl{rho2, rho3},
		algopts.WithCompleteArithmetic())
	if err != nil {
		return err
	}
	pSum, err := curve.MultiScalarMul(
		[]*sw_bn254.G1Affine{&proofs[0].CommitmentPok.G1El, &proofs[1].CommitmentPok.G1El}, []*frEl{rho2, rho3},
		algopts.WithCompleteArithmetic())
	if err != nil {
		return err
	}
	beta := sw_bn254.NewG2AffineFixed(c.beta)
	ck := c.vk.CommitmentKeys[0]
	return pairing.PairingCheck(
		[]*sw_bn254.G1Affine{&proofs[0].Ar, rA1, kSum, cSum, negAlpha, dSum, pSum},
		[]*sw_bn254.G2Affine{&proofs[0].Bs, &proofs[1].Bs, &c.vk.G2.GammaNeg, &c.vk.G2.DeltaNeg, &beta, &ck.GSigmaNeg, &ck.G})
}

// beBytes turns little-endian bits (a multiple of 8) into big-endian range-checked bytes.
func beBytes(api frontend.API, bapi *uints.Bytes, bits []frontend.Variable) []uints.U8 {
	n := len(bits) / 8
	out := make([]uints.U8, n)
	for k := 0; k < n; k++ {
		lsb := 8 * (n - 1 - k)
		out[k] = bapi.ValueOf(api.FromBinary(bits[lsb : lsb+8]...))
	}
	return out
}

func packBE(api frontend.API, bapi *uints.Bytes, b []uints.U8) frontend.Variable {
	var acc frontend.Variable = 0
	for _, x := range b {
		acc = api.Add(api.Mul(acc, 256), bapi.ValueUnchecked(x))
	}
	return acc
}

func keccakU8(api frontend.API, in []uints.U8) []uints.U8 {
	h, err := sha3.NewLegacyKeccak256(api)
	if err != nil {
		panic(err)
	}
	h.Write(in)
	return h.Sum()
}

// ChildProverOption is the prover option every non-top proof of the tree (aggregation outer
// proofs and intermediate merge proofs) must be made with: the commitment's hash-to-field is the
// recursion-friendly one the in-circuit verifier recomputes. Only the top proof is made for the
// Solidity verifier (solidity.WithProverTargetSolidityVerifier).
func ChildProverOption() backend.ProverOption {
	return stdgroth16.GetNativeProverOptions(ecc.BN254.ScalarField(), ecc.BN254.ScalarField())
}

// ChildVerifierOption verifies such a proof natively.
func ChildVerifierOption() backend.VerifierOption {
	return stdgroth16.GetNativeVerifierOptions(ecc.BN254.ScalarField(), ecc.BN254.ScalarField())
}

func keccak256(b []byte) [32]byte {
	h := xsha3.NewLegacyKeccak256()
	h.Write(b)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
