package verify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	bn "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/kzg"
	"github.com/consensys/gnark/backend"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
	"github.com/consensys/gnark/backend/solidity"
	recplonk "github.com/consensys/gnark/std/recursion/plonk"
)

// Producer tags: first byte of a canonical PLONK vk (gnark and snarkjs PLONK are different
// verifiers with different transcripts; the tag keeps their vk hashes apart).
const (
	PlonkProducerGnark   byte = 0x01
	PlonkProducerSnarkjs byte = 0x02
)

// maxPlonkSize bounds the domain size accepted from a key (2^27 gates).
const maxPlonkSize = 1 << 27

// GnarkPlonkVK is a validated gnark bn254 PLONK verifying key.
type GnarkPlonkVK struct {
	Size, NbPublic        uint64
	Generator, CosetShift fr.Element
	S                     [3]bn.G1Affine
	Ql, Qr, Qm, Qo, Qk    bn.G1Affine
	Qcp                   []bn.G1Affine
	CommitmentIndexes     []uint64
	KzgG1                 bn.G1Affine
	KzgG2                 [2]bn.G2Affine
}

// Canonical: 0x01 | u64 Size | u64 NbPublic | Generator | CosetShift | S1..S3 | Ql Qr Qm Qo Qk |
// u32 n_qcp | Qcp.. | u32 n_idx | u64 idx.. | kzg G1 | kzg G2[0] | kzg G2[1] (EVM layouts).
func (vk *GnarkPlonkVK) Canonical() []byte {
	out := []byte{PlonkProducerGnark}
	out = binary.BigEndian.AppendUint64(out, vk.Size)
	out = binary.BigEndian.AppendUint64(out, vk.NbPublic)
	out = append(out, FrToBytes(&vk.Generator)...)
	out = append(out, FrToBytes(&vk.CosetShift)...)
	for _, p := range []*bn.G1Affine{&vk.S[0], &vk.S[1], &vk.S[2], &vk.Ql, &vk.Qr, &vk.Qm, &vk.Qo, &vk.Qk} {
		out = append(out, G1ToEVM(p)...)
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(vk.Qcp)))
	for i := range vk.Qcp {
		out = append(out, G1ToEVM(&vk.Qcp[i])...)
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(vk.CommitmentIndexes)))
	for _, v := range vk.CommitmentIndexes {
		out = binary.BigEndian.AppendUint64(out, v)
	}
	out = append(out, G1ToEVM(&vk.KzgG1)...)
	out = append(out, G2ToEVM(&vk.KzgG2[0])...)
	out = append(out, G2ToEVM(&vk.KzgG2[1])...)
	return out
}

func (r *reader) fr(field string) (fr.Element, error) {
	s, err := r.take(32, field)
	if err != nil {
		return fr.Element{}, err
	}
	return FrCanonical(s, field)
}

// ParseGnarkPlonkVK strictly decodes a (versioned) gnark bn254 PLONK VerifyingKey written by
// WriteTo or WriteRawTo, including a check that the precomputed KZG pairing lines match G2.
func ParseGnarkPlonkVK(b []byte) (*GnarkPlonkVK, error) {
	r := &reader{b: b}
	marker, err := r.u64("vk.version")
	if err != nil {
		return nil, err
	}
	if marker != 0 {
		return nil, errf(CodeUnsupportedFormat, "vk.version", "legacy (unversioned) gnark PLONK key encoding is not supported")
	}
	ver, err := r.u64("vk.version")
	if err != nil {
		return nil, err
	}
	if ver != 1 {
		return nil, errf(CodeUnsupportedFormat, "vk.version", "unsupported gnark PLONK key version %d", ver)
	}
	vk := &GnarkPlonkVK{}
	if vk.Size, err = r.u64("vk.Size"); err != nil {
		return nil, err
	}
	if vk.Size < 2 || vk.Size > maxPlonkSize || vk.Size&(vk.Size-1) != 0 {
		return nil, errf(CodeMalformed, "vk.Size", "domain size must be a power of two in [2, 2^27], got %d", vk.Size)
	}
	sizeInv, err := r.fr("vk.SizeInv")
	if err != nil {
		return nil, err
	}
	var chk fr.Element
	chk.SetUint64(vk.Size).Mul(&chk, &sizeInv)
	if !chk.IsOne() {
		return nil, errf(CodeMalformed, "vk.SizeInv", "SizeInv is not the inverse of Size")
	}
	if vk.Generator, err = r.fr("vk.Generator"); err != nil {
		return nil, err
	}
	var g fr.Element
	g.Exp(vk.Generator, new(big.Int).SetUint64(vk.Size/2))
	var minusOne fr.Element
	minusOne.SetOne().Neg(&minusOne)
	if !g.Equal(&minusOne) { // then g^Size == 1 and the order is exactly Size
		return nil, errf(CodeMalformed, "vk.Generator", "generator is not a primitive %d-th root of unity", vk.Size)
	}
	if vk.NbPublic, err = r.u64("vk.NbPublicVariables"); err != nil {
		return nil, err
	}
	if vk.NbPublic > vk.Size {
		return nil, errf(CodeMalformed, "vk.NbPublicVariables", "%d public variables exceed domain size %d", vk.NbPublic, vk.Size)
	}
	if vk.CosetShift, err = r.fr("vk.CosetShift"); err != nil {
		return nil, err
	}
	// points: the container encoding is the first point's
	if r.remaining() == 0 {
		return nil, errf(CodeInvalidLength, "vk.S[0]", "truncated")
	}
	r.raw = r.b[r.off]&flagMask == flagUncompressed
	for i := range vk.S {
		if vk.S[i], err = r.g1(fmt.Sprintf("vk.S[%d]", i), allowInfinity); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		n string
		p *bn.G1Affine
	}{{"vk.Ql", &vk.Ql}, {"vk.Qr", &vk.Qr}, {"vk.Qm", &vk.Qm}, {"vk.Qo", &vk.Qo}, {"vk.Qk", &vk.Qk}} {
		if *f.p, err = r.g1(f.n, allowInfinity); err != nil {
			return nil, err
		}
	}
	nq, err := r.u32("vk.Qcp")
	if err != nil {
		return nil, err
	}
	if nq > 64 {
		return nil, errf(CodeMalformed, "vk.Qcp", "too many commitments: %d", nq)
	}
	vk.Qcp = make([]bn.G1Affine, nq)
	for i := range vk.Qcp {
		if vk.Qcp[i], err = r.g1(fmt.Sprintf("vk.Qcp[%d]", i), allowInfinity); err != nil {
			return nil, err
		}
	}
	if vk.KzgG1, err = r.g1("vk.Kzg.G1", noInfinity); err != nil {
		return nil, err
	}
	if vk.KzgG2[0], err = r.g2("vk.Kzg.G2[0]", noInfinity); err != nil {
		return nil, err
	}
	if vk.KzgG2[1], err = r.g2("vk.Kzg.G2[1]", noInfinity); err != nil {
		return nil, err
	}
	var lines [2][2][len(bn.LoopCounter)]bn.LineEvaluationAff
	lines[0] = bn.PrecomputeLines(vk.KzgG2[0])
	lines[1] = bn.PrecomputeLines(vk.KzgG2[1])
	var want bytes.Buffer
	if err := bn.NewEncoder(&want).Encode(&lines); err != nil {
		return nil, errf(CodeInternal, "vk.Kzg.Lines", "encode: %v", err)
	}
	got, err := r.take(want.Len(), "vk.Kzg.Lines")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want.Bytes()) {
		return nil, errf(CodeMalformed, "vk.Kzg.Lines", "precomputed pairing lines do not match Kzg.G2")
	}
	ni, err := r.u32("vk.CommitmentConstraintIndexes")
	if err != nil {
		return nil, err
	}
	if ni != nq {
		return nil, errf(CodeMalformed, "vk.CommitmentConstraintIndexes", "%d indexes for %d commitments", ni, nq)
	}
	for i := 0; i < int(ni); i++ {
		f := fmt.Sprintf("vk.CommitmentConstraintIndexes[%d]", i)
		v, err := r.u64(f)
		if err != nil {
			return nil, err
		}
		if v >= vk.Size {
			return nil, errf(CodeMalformed, f, "index %d outside the domain", v)
		}
		vk.CommitmentIndexes = append(vk.CommitmentIndexes, v)
	}
	return vk, r.done("vk")
}

// GnarkPlonkProof is a validated gnark PLONK proof.
type GnarkPlonkProof struct {
	p plonkbn254.Proof
}

// Canonical is gnark's MarshalSolidity layout (what the exported Solidity verifier takes).
func (p *GnarkPlonkProof) Canonical() []byte { return p.p.MarshalSolidity() }

// Gnark is the decoded gnark proof (for the in-circuit verifier's witness).
func (p *GnarkPlonkProof) Gnark() *plonkbn254.Proof { return &p.p }

// Fiat-Shamir transcripts of gnark PLONK proofs. A proof verifies under exactly one of them:
// "solidity" (SHA-256, what gnark's exported Solidity verifier takes) or "recursion" (MiMC,
// std/recursion/plonk.GetNativeProverOptions: what an outer gnark circuit can verify).
const (
	TranscriptSolidity  = "solidity"
	TranscriptRecursion = "recursion"
)

// VerifyGnarkPlonkTranscript runs gnark's PLONK verifier with one transcript.
func VerifyGnarkPlonkTranscript(p *plonkbn254.Proof, vk *plonkbn254.VerifyingKey, pub []fr.Element, transcript string) error {
	var opt backend.VerifierOption
	switch transcript {
	case TranscriptSolidity:
		opt = solidity.WithVerifierTargetSolidityVerifier(backend.PLONK)
	case TranscriptRecursion:
		f := ecc.BN254.ScalarField()
		opt = recplonk.GetNativeVerifierOptions(f, f)
	default:
		return fmt.Errorf("unknown transcript %q", transcript)
	}
	return plonkbn254.Verify(p, vk, append([]fr.Element{}, pub...), opt)
}

// ParseGnarkPlonkProof strictly decodes a gnark bn254 PLONK proof (WriteTo or WriteRawTo).
func ParseGnarkPlonkProof(b []byte, vk *GnarkPlonkVK) (*GnarkPlonkProof, error) {
	raw, err := gnarkRawFlag(b, "proof")
	if err != nil {
		return nil, err
	}
	r := &reader{b: b, raw: raw}
	out := &GnarkPlonkProof{}
	p := &out.p
	g1s := []struct {
		n string
		p *bn.G1Affine
	}{{"proof.LRO[0]", &p.LRO[0]}, {"proof.LRO[1]", &p.LRO[1]}, {"proof.LRO[2]", &p.LRO[2]}, {"proof.Z", &p.Z},
		{"proof.H[0]", &p.H[0]}, {"proof.H[1]", &p.H[1]}, {"proof.H[2]", &p.H[2]}, {"proof.BatchedProof.H", &p.BatchedProof.H}}
	for _, f := range g1s {
		if *f.p, err = r.g1(f.n, noInfinity); err != nil {
			return nil, err
		}
	}
	nv, err := r.u32("proof.BatchedProof.ClaimedValues")
	if err != nil {
		return nil, err
	}
	if int(nv) != 6+len(vk.Qcp) {
		return nil, errf(CodeMalformed, "proof.BatchedProof.ClaimedValues", "%d claimed values, vk implies %d", nv, 6+len(vk.Qcp))
	}
	p.BatchedProof.ClaimedValues = make([]fr.Element, nv)
	for i := range p.BatchedProof.ClaimedValues {
		if p.BatchedProof.ClaimedValues[i], err = r.fr(fmt.Sprintf("proof.BatchedProof.ClaimedValues[%d]", i)); err != nil {
			return nil, err
		}
	}
	if p.ZShiftedOpening.H, err = r.g1("proof.ZShiftedOpening.H", noInfinity); err != nil {
		return nil, err
	}
	if p.ZShiftedOpening.ClaimedValue, err = r.fr("proof.ZShiftedOpening.ClaimedValue"); err != nil {
		return nil, err
	}
	nc, err := r.u32("proof.Bsb22Commitments")
	if err != nil {
		return nil, err
	}
	if int(nc) != len(vk.Qcp) {
		return nil, errf(CodeMalformed, "proof.Bsb22Commitments", "%d commitments, vk expects %d", nc, len(vk.Qcp))
	}
	p.Bsb22Commitments = make([]kzg.Digest, nc)
	for i := range p.Bsb22Commitments {
		if p.Bsb22Commitments[i], err = r.g1(fmt.Sprintf("proof.Bsb22Commitments[%d]", i), allowInfinity); err != nil {
			return nil, err
		}
	}
	return out, r.done("proof")
}

// PlonkNormalized is the result of plonk.normalize.
type PlonkNormalized struct {
	CanonicalVK []byte
	Proof       []byte
	Public      []fr.Element
	NPublic     int
	Commitments int
	Transcript  string // gnark proofs: TranscriptSolidity or TranscriptRecursion
}

// NormalizeGnarkPlonk validates gnark PLONK vk/proof bytes and verifies with gnark's verifier,
// with the Solidity transcript first and, if that fails, the recursion transcript (a valid proof
// passes under exactly one; an invalid one costs two verifications).
func NormalizeGnarkPlonk(vkb, proofb []byte, pub []fr.Element) (*PlonkNormalized, error) {
	key, err := gnarkPlonkKeys.get(vkb, parseGnarkPlonkKey)
	if err != nil {
		return nil, err
	}
	vk := key.vk
	p, err := ParseGnarkPlonkProof(proofb, vk)
	if err != nil {
		return nil, err
	}
	if uint64(len(pub)) != vk.NbPublic {
		return nil, errf(CodePublicInputCount, "public", "vk expects %d public inputs, got %d", vk.NbPublic, len(pub))
	}
	transcript := TranscriptSolidity
	if err := VerifyGnarkPlonkTranscript(&p.p, key.gvk, pub, TranscriptSolidity); err != nil {
		if VerifyGnarkPlonkTranscript(&p.p, key.gvk, pub, TranscriptRecursion) != nil {
			return nil, errf(CodeVerificationFailed, "proof", "gnark PLONK verifier (Solidity and recursion transcripts): %v", err)
		}
		transcript = TranscriptRecursion
	}
	return &PlonkNormalized{CanonicalVK: key.canonical, Proof: p.Canonical(), Public: pub,
		NPublic: int(vk.NbPublic), Commitments: len(vk.Qcp), Transcript: transcript}, nil
}

// LoadGnarkPlonkKey is the normalizer's decode of a gnark PLONK vk, shared with other callers
// (the aggregation worker): the validated key, gnark's verifier key object and Sheaf's canonical
// bytes, cached by the exact vk bytes like plonk.normalize's.
func LoadGnarkPlonkKey(vkb []byte) (*GnarkPlonkVK, *plonkbn254.VerifyingKey, []byte, error) {
	key, err := gnarkPlonkKeys.get(vkb, parseGnarkPlonkKey)
	if err != nil {
		return nil, nil, nil, err
	}
	return key.vk, key.gvk, key.canonical, nil
}

// parseGnarkPlonkKey validates a gnark PLONK vk and decodes it again with gnark (its verifier's
// key object); the result is cached by the exact bytes.
func parseGnarkPlonkKey(vkb []byte) (*gnarkPlonkKey, error) {
	vk, err := ParseGnarkPlonkVK(vkb)
	if err != nil {
		return nil, err
	}
	gvk := &plonkbn254.VerifyingKey{}
	if _, err := gvk.ReadFrom(bytes.NewReader(vkb)); err != nil {
		return nil, errf(CodeInternal, "vk", "gnark rejected a key sheaf accepted: %v", err)
	}
	return &gnarkPlonkKey{vk: vk, gvk: gvk, canonical: vk.Canonical()}, nil
}

// VerifyGnarkPlonkBatch verifies gnark PLONK proofs of one vk with a single KZG batch check:
// each proof is reduced (transcript, linearisation, folding) exactly as gnark's verifier does
// and all 2N openings go through one kzg.BatchVerifyMultiPoints (random folding, one pairing).
func VerifyGnarkPlonkBatch(vk *plonkbn254.VerifyingKey, proofs []*plonkbn254.Proof, pubs [][]fr.Element) error {
	if len(proofs) != len(pubs) || len(proofs) == 0 {
		return errf(CodeMalformed, "items", "need one public-input list per proof and at least one proof")
	}
	digests := make([]kzg.Digest, 0, 2*len(proofs))
	openings := make([]kzg.OpeningProof, 0, 2*len(proofs))
	points := make([]fr.Element, 0, 2*len(proofs))
	for i, p := range proofs {
		o, err := gnarkPlonkReduce(p, vk, pubs[i])
		if err != nil {
			return errf(CodeVerificationFailed, "proof", "gnark PLONK verifier: %v", err)
		}
		digests = append(digests, o.digests[:]...)
		openings = append(openings, o.proofs[:]...)
		points = append(points, o.points[:]...)
	}
	if err := kzg.BatchVerifyMultiPoints(digests, openings, points, vk.Kzg); err != nil {
		return errf(CodeVerificationFailed, "proof", "KZG batch check: %v", err)
	}
	return nil
}
