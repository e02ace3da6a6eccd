package aggregation

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bn254"
	"golang.org/x/crypto/sha3"

	"github.com/sheaf-zk/sheaf/gnark/procproto"
)

// Error codes of the prover process (stable; UPPER_SNAKE like every procproto code; the
// aggregator maps them, aggregator/recursion.py).
const (
	CodeBadLeaf  = "BAD_LEAF"  // field leaves[i]....: this leaf cannot be aggregated
	CodeBadBatch = "BAD_BATCH" // the batch as a whole (leaf count, order, a proof to verify)
	CodeBadShape = "BAD_SHAPE" // --batch/--npub/--plonk
	CodeInternal = procproto.CodeInternal
)

// Error is a failure with a stable code and the offending field: procproto's one error type.
type Error = procproto.Error

func leafErr(i int, field, format string, a ...any) error {
	return &Error{Code: CodeBadLeaf, Field: fmt.Sprintf("leaves[%d].%s", i, field), Message: fmt.Sprintf(format, a...)}
}

// Leaf is one inner BN254 proof. Groth16 (Scheme "" or "groth16"): Sheaf's canonical byte
// forms. PLONK ("plonk"): gnark's own vk and proof encodings (WriteTo or WriteRawTo), recursion
// transcript; the canonical vk is derived from them.
type Leaf struct {
	Scheme string
	VK     []byte   // groth16: canonical vk (see VKLen); plonk: gnark PLONK vk
	Proof  []byte   // groth16: 256 bytes A(64) | B(128, x.c1|x.c0|y.c1|y.c0) | C(64); plonk: gnark proof
	Pubs   [][]byte // 32-byte big-endian scalars, each < r
}

// IsPlonk reports whether the leaf goes to a PLONK slot.
func (l *Leaf) IsPlonk() bool { return l.Scheme == SchemePlonk }

// parsed holds the decoded points of a leaf.
type parsed struct {
	alpha          bn254.G1Affine
	beta, gam, del bn254.G2Affine
	ic             []bn254.G1Affine
	a, c           bn254.G1Affine
	b              bn254.G2Affine
	pubs           []fr.Element
}

func g1(b []byte) (bn254.G1Affine, error) {
	var p bn254.G1Affine
	if _, err := p.SetBytes(b); err != nil {
		return p, err
	}
	if p.IsInfinity() {
		return p, errors.New("point at infinity")
	}
	return p, nil
}

func g2(b []byte) (bn254.G2Affine, error) {
	var p bn254.G2Affine
	if _, err := p.SetBytes(b); err != nil {
		return p, err
	}
	if p.IsInfinity() {
		return p, errors.New("point at infinity")
	}
	return p, nil
}

// parse decodes and validates leaf i (encodings canonical, points on curve and in subgroup,
// scalars < r) and checks the proof natively, so a bad leaf is reported by index before the
// minutes-long outer proof is attempted.
func (l *Leaf) parse(i int) (*parsed, error) {
	if len(l.Pubs) == 0 {
		return nil, leafErr(i, "public_inputs", "no public inputs")
	}
	if len(l.VK) != VKLen(len(l.Pubs)) {
		return nil, leafErr(i, "vk", "canonical vk for %d public inputs must be %d bytes, got %d", len(l.Pubs), VKLen(len(l.Pubs)), len(l.VK))
	}
	if len(l.Proof) != proofLen {
		return nil, leafErr(i, "proof", "must be %d bytes (A|B|C EVM layout), got %d", proofLen, len(l.Proof))
	}
	var p parsed
	var err error
	if p.alpha, err = g1(l.VK[0:64]); err != nil {
		return nil, leafErr(i, "vk", "alpha1: %v", err)
	}
	for k, dst := range []*bn254.G2Affine{&p.beta, &p.gam, &p.del} {
		if *dst, err = g2(l.VK[64+128*k : 192+128*k]); err != nil {
			return nil, leafErr(i, "vk", "%s: %v", []string{"beta2", "gamma2", "delta2"}[k], err)
		}
	}
	nic := int(l.VK[vkHeaderLen-4])<<24 | int(l.VK[vkHeaderLen-3])<<16 | int(l.VK[vkHeaderLen-2])<<8 | int(l.VK[vkHeaderLen-1])
	if nic != len(l.Pubs)+1 {
		return nil, leafErr(i, "vk", "n_ic is %d but %d public inputs were given", nic, len(l.Pubs))
	}
	p.ic = make([]bn254.G1Affine, nic)
	for k := range p.ic {
		if p.ic[k], err = g1(l.VK[vkHeaderLen+64*k : vkHeaderLen+64*k+64]); err != nil {
			return nil, leafErr(i, "vk", "IC[%d]: %v", k, err)
		}
	}
	if p.a, err = g1(l.Proof[0:64]); err != nil {
		return nil, leafErr(i, "proof", "A: %v", err)
	}
	if p.b, err = g2(l.Proof[64:192]); err != nil {
		return nil, leafErr(i, "proof", "B: %v", err)
	}
	if p.c, err = g1(l.Proof[192:256]); err != nil {
		return nil, leafErr(i, "proof", "C: %v", err)
	}
	r := fr.Modulus()
	p.pubs = make([]fr.Element, len(l.Pubs))
	for k, b := range l.Pubs {
		if len(b) != scalarLen {
			return nil, leafErr(i, fmt.Sprintf("public_inputs[%d]", k), "must be 32 bytes, got %d", len(b))
		}
		if new(big.Int).SetBytes(b).Cmp(r) >= 0 {
			return nil, leafErr(i, fmt.Sprintf("public_inputs[%d]", k), "not a canonical BN254 scalar (>= r)")
		}
		p.pubs[k].SetBytes(b)
	}
	// native Groth16 check: e(A,B) e(-alpha,beta) e(-K,gamma) e(-C,delta) == 1
	var kSum bn254.G1Jac
	kSum.FromAffine(&p.ic[0])
	for k := range p.pubs {
		var t bn254.G1Jac
		var s big.Int
		t.ScalarMultiplication(new(bn254.G1Jac).FromAffine(&p.ic[k+1]), p.pubs[k].BigInt(&s))
		kSum.AddAssign(&t)
	}
	var kA, nAlpha, nK, nC bn254.G1Affine
	kA.FromJacobian(&kSum)
	nAlpha.Neg(&p.alpha)
	nK.Neg(&kA)
	nC.Neg(&p.c)
	ok, err := bn254.PairingCheck([]bn254.G1Affine{p.a, nAlpha, nK, nC}, []bn254.G2Affine{p.b, p.beta, p.gam, p.del})
	if err != nil {
		return nil, leafErr(i, "proof", "pairing: %v", err)
	}
	if !ok {
		return nil, leafErr(i, "proof", "does not verify against vk and public_inputs")
	}
	return &p, nil
}

func keccak256(parts ...[]byte) []byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// VKHash is Sheaf's vk_hash for a canonical Groth16 vk.
func VKHash(vk []byte) []byte { return keccak256(vkTag, []byte{schemeGroth16}, vk) }

// StatementHash is Sheaf's statement hash (normalizers/statement.py) of a leaf (nil for a
// PLONK leaf whose vk does not decode).
func (l *Leaf) StatementHash() []byte {
	if l.IsPlonk() {
		canonical, _, err := PlonkCanonicalVK(l.VK)
		if err != nil {
			return nil
		}
		return keccak256(statementTag, []byte{envelopeVersion, schemePlonk}, PlonkVKHash(canonical), keccak256(l.Pubs...))
	}
	return keccak256(statementTag, []byte{envelopeVersion, schemeGroth16}, VKHash(l.VK), keccak256(l.Pubs...))
}

// MerkleRoot is contracts/src/Merkle.sol's root: leaves hashed first, pairs keccak(l || r), odd
// last node promoted unhashed.
func MerkleRoot(leaves [][]byte) []byte {
	level := make([][]byte, len(leaves))
	for i, l := range leaves {
		level[i] = keccak256(l)
	}
	for len(level) > 1 {
		next := make([][]byte, 0, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			if i+1 < len(level) {
				next = append(next, keccak256(level[i], level[i+1]))
			} else {
				next = append(next, level[i])
			}
		}
		level = next
	}
	return level[0]
}

// PublicInputs are the outer proof's public inputs for an ordered, non-empty leaf list, in the
// order Groth16AggregationAdapter.publicInputs builds them: [root >> 128, root mod 2^128, count].
func PublicInputs(leaves [][]byte) [3]*big.Int {
	r := MerkleRoot(leaves)
	return [3]*big.Int{new(big.Int).SetBytes(r[:16]), new(big.Int).SetBytes(r[16:]), big.NewInt(int64(len(leaves)))}
}

// Assign validates the leaves (1..Batch of them, each with NPub public inputs, Groth16 leaves
// first, then PLONK leaves: that is the tree order) and builds the full outer witness. Missing
// slots of each kind are filled with copies of that kind's last leaf, or with a padding proof
// when the batch has none of that kind (verified in-circuit, outside the Merkle tree).
func Assign(s Shape, leaves []Leaf) (*Circuit, [][]byte, error) {
	if err := s.validate(); err != nil {
		return nil, nil, &Error{Code: CodeBadShape, Field: "shape", Message: err.Error()}
	}
	if len(leaves) == 0 || len(leaves) > s.Batch {
		return nil, nil, &Error{Code: CodeBadBatch, Field: "leaves", Message: fmt.Sprintf("need 1..%d leaves, got %d", s.Batch, len(leaves))}
	}
	nG, nP := 0, 0
	for i := range leaves {
		switch {
		case leaves[i].IsPlonk():
			nP++
		case nP > 0:
			return nil, nil, &Error{Code: CodeBadBatch, Field: fmt.Sprintf("leaves[%d]", i), Message: "Groth16 leaves must come before PLONK leaves (the tree order)"}
		default:
			nG++
		}
	}
	if nG > s.Groth16Slots() || nP > s.Plonk {
		return nil, nil, &Error{Code: CodeBadBatch, Field: "leaves", Message: fmt.Sprintf(
			"%d Groth16 and %d PLONK leaves do not fit this circuit's %d Groth16 and %d PLONK slots", nG, nP, s.Groth16Slots(), s.Plonk)}
	}
	c := NewCircuit(s)
	hashes := make([][]byte, len(leaves))
	for i := range leaves {
		if len(leaves[i].Pubs) != s.NPub {
			return nil, nil, leafErr(i, "public_inputs", "this circuit takes exactly %d public inputs, got %d", s.NPub, len(leaves[i].Pubs))
		}
		if leaves[i].IsPlonk() {
			p, err := leaves[i].parsePlonk(i)
			if err != nil {
				return nil, nil, err
			}
			if err := assignPlonkSlot(&c.PlonkLeaves[i-nG], &leaves[i], p); err != nil {
				return nil, nil, &Error{Code: CodeInternal, Field: fmt.Sprintf("leaves[%d]", i), Message: err.Error()}
			}
		} else {
			p, err := leaves[i].parse(i)
			if err != nil {
				return nil, nil, err
			}
			assignSlot(&c.Leaves[i], &leaves[i], p)
		}
		hashes[i] = leaves[i].StatementHash()
	}
	if err := pad(c, s, nG, nP); err != nil {
		return nil, nil, err
	}
	if len(c.CountG) == 1 {
		c.CountG[0] = nG
	}
	pub := PublicInputs(hashes)
	c.RootHi, c.RootLo, c.Count = pub[0], pub[1], pub[2]
	return c, hashes, nil
}

// assignBytes fills byte witnesses: the vk, then the public inputs concatenated.
func assignBytes(vkW, pubW []frontend.Variable, vk []byte, pubs [][]byte) {
	for j, b := range vk {
		vkW[j] = b
	}
	k := 0
	for _, pb := range pubs {
		for _, b := range pb {
			pubW[k] = b
			k++
		}
	}
}

func assignSlot(w *LeafWitness, l *Leaf, p *parsed) {
	assignBytes(w.VK, w.Pubs, l.VK, l.Pubs)
	w.Ar = sw_bn254.NewG1Affine(p.a)
	w.Krs = sw_bn254.NewG1Affine(p.c)
	w.Bs = sw_bn254.NewG2Affine(p.b)
}

// LeafFromGnark converts a gnark BN254 Groth16 proof (no commitments), its vk and public
// witness to canonical form.
func LeafFromGnark(vk groth16.VerifyingKey, proof groth16.Proof, pub witness.Witness) (Leaf, error) {
	tvk, ok := vk.(*groth16bn254.VerifyingKey)
	if !ok {
		return Leaf{}, fmt.Errorf("vk is %T, want BN254", vk)
	}
	tp, ok := proof.(*groth16bn254.Proof)
	if !ok {
		return Leaf{}, fmt.Errorf("proof is %T, want BN254", proof)
	}
	if len(tp.Commitments) != 0 || len(tvk.PublicAndCommitmentCommitted) != 0 {
		return Leaf{}, errors.New("proofs with Pedersen commitments are not supported")
	}
	v := CanonicalVK(tvk)
	vec, ok := pub.Vector().(fr.Vector)
	if !ok {
		return Leaf{}, errors.New("public witness is not a BN254 vector")
	}
	pubs := make([][]byte, len(vec))
	for i := range vec {
		b := vec[i].Bytes()
		pubs[i] = b[:]
	}
	return Leaf{VK: v, Proof: tp.MarshalSolidity(), Pubs: pubs}, nil
}

// CanonicalVK is Sheaf's canonical Groth16 vk bytes of a gnark BN254 vk.
func CanonicalVK(vk *groth16bn254.VerifyingKey) []byte {
	out := make([]byte, 0, VKLen(len(vk.G1.K)-1))
	a := vk.G1.Alpha.RawBytes()
	out = append(out, a[:]...)
	for _, q := range []*bn254.G2Affine{&vk.G2.Beta, &vk.G2.Gamma, &vk.G2.Delta} {
		b := q.RawBytes()
		out = append(out, b[:]...)
	}
	n := uint32(len(vk.G1.K))
	out = append(out, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	for i := range vk.G1.K {
		b := vk.G1.K[i].RawBytes()
		out = append(out, b[:]...)
	}
	return out
}

// DecodeHex accepts hex with or without 0x.
func DecodeHex(s string) ([]byte, error) {
	return hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
}

var _ frontend.Circuit = (*Circuit)(nil)

func hexs(b []byte) string { return "0x" + hex.EncodeToString(b) }
