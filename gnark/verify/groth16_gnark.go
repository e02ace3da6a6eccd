package verify

import (
	"fmt"

	bn "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/pedersen"
	"github.com/consensys/gnark/backend"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/solidity"
)

// gnarkRawFlag tells the container encoding from the first point's flag bits:
// 00 = uncompressed (WriteRawTo), anything else = compressed (WriteTo).
func gnarkRawFlag(b []byte, field string) (bool, error) {
	if len(b) == 0 {
		return false, errf(CodeInvalidLength, field, "empty input")
	}
	return b[0]&flagMask == flagUncompressed, nil
}

// ParseGnarkGroth16VK strictly decodes a gnark bn254 groth16 VerifyingKey written by
// WriteTo (compressed) or WriteRawTo (raw); the encoding is auto-detected.
func ParseGnarkGroth16VK(b []byte) (*Groth16VK, error) {
	raw, err := gnarkRawFlag(b, "vk")
	if err != nil {
		return nil, err
	}
	r := &reader{b: b, raw: raw}
	vk := &Groth16VK{}
	if vk.Alpha, err = r.g1("vk.G1.Alpha", noInfinity); err != nil {
		return nil, err
	}
	if vk.gnarkBeta1, err = r.g1("vk.G1.Beta", noInfinity); err != nil {
		return nil, err
	}
	if vk.Beta, err = r.g2("vk.G2.Beta", noInfinity); err != nil {
		return nil, err
	}
	if vk.Gamma, err = r.g2("vk.G2.Gamma", noInfinity); err != nil {
		return nil, err
	}
	if vk.gnarkDelta1, err = r.g1("vk.G1.Delta", noInfinity); err != nil {
		return nil, err
	}
	if vk.Delta, err = r.g2("vk.G2.Delta", noInfinity); err != nil {
		return nil, err
	}
	nk, err := r.u32("vk.G1.K")
	if err != nil {
		return nil, err
	}
	if nk < 1 || nk > maxIC {
		return nil, errf(CodeMalformed, "vk.G1.K", "len(K) must be in [1, %d], got %d", maxIC, nk)
	}
	vk.IC = make([]bn.G1Affine, nk)
	for i := range vk.IC {
		if vk.IC[i], err = r.g1(fmt.Sprintf("vk.G1.K[%d]", i), allowInfinity); err != nil {
			return nil, err
		}
	}
	npc, err := r.u32("vk.PublicAndCommitmentCommitted")
	if err != nil {
		return nil, err
	}
	if npc > 1 {
		return nil, errf(CodeUnsupportedFormat, "vk.PublicAndCommitmentCommitted", "at most one commitment is supported (gnark's Solidity verifier), got %d", npc)
	}
	var committed []uint32
	if npc == 1 {
		m, err := r.u32("vk.PublicAndCommitmentCommitted[0]")
		if err != nil {
			return nil, err
		}
		if int(m) > r.remaining()/8 {
			return nil, errf(CodeInvalidLength, "vk.PublicAndCommitmentCommitted[0]", "truncated: %d indices", m)
		}
		for j := 0; j < int(m); j++ {
			f := fmt.Sprintf("vk.PublicAndCommitmentCommitted[0][%d]", j)
			v, err := r.u64(f)
			if err != nil {
				return nil, err
			}
			if v > maxIC {
				return nil, errf(CodeMalformed, f, "index %d out of range", v)
			}
			committed = append(committed, uint32(v))
		}
	}
	nck, err := r.u32("vk.CommitmentKeys")
	if err != nil {
		return nil, err
	}
	if nck != npc {
		return nil, errf(CodeMalformed, "vk.CommitmentKeys", "%d commitment keys for %d committed-index lists", nck, npc)
	}
	if nck == 1 {
		c := &CommitmentKey{Committed: committed}
		if c.G, err = r.g2("vk.CommitmentKeys[0].G", noInfinity); err != nil {
			return nil, err
		}
		if c.GSigmaNeg, err = r.g2("vk.CommitmentKeys[0].GSigmaNeg", noInfinity); err != nil {
			return nil, err
		}
		vk.Commitment = c
	}
	if err := r.done("vk"); err != nil {
		return nil, err
	}
	return vk, vk.checkStructure()
}

// ParseGnarkGroth16Proof strictly decodes a gnark bn254 groth16 Proof (WriteTo or WriteRawTo).
func ParseGnarkGroth16Proof(b []byte, vk *Groth16VK) (*Groth16Proof, error) {
	raw, err := gnarkRawFlag(b, "proof")
	if err != nil {
		return nil, err
	}
	r := &reader{b: b, raw: raw}
	p := &Groth16Proof{}
	if p.A, err = r.g1("proof.Ar", noInfinity); err != nil {
		return nil, err
	}
	if p.B, err = r.g2("proof.Bs", noInfinity); err != nil {
		return nil, err
	}
	if p.C, err = r.g1("proof.Krs", noInfinity); err != nil {
		return nil, err
	}
	nc, err := r.u32("proof.Commitments")
	if err != nil {
		return nil, err
	}
	if int(nc) != vk.NCommitments() {
		return nil, errf(CodeMalformed, "proof.Commitments", "proof has %d commitments, vk expects %d", nc, vk.NCommitments())
	}
	if nc == 1 {
		if p.Commitment, err = r.g1("proof.Commitments[0]", noInfinity); err != nil {
			return nil, err
		}
		if p.PoK, err = r.g1("proof.CommitmentPok", noInfinity); err != nil {
			return nil, err
		}
	} else {
		// gnark always writes the (unused) PoK; without commitments it must be infinity
		pok, err := r.g1("proof.CommitmentPok", allowInfinity)
		if err != nil {
			return nil, err
		}
		if !pok.IsInfinity() {
			return nil, errf(CodeMalformed, "proof.CommitmentPok", "must be the point at infinity when the proof has no commitments")
		}
	}
	if err := r.done("proof"); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseGnarkPublicWitness strictly decodes witness.MarshalBinary of a bn254 public witness.
func ParseGnarkPublicWitness(b []byte) ([]fr.Element, error) {
	r := &reader{b: b}
	nPub, err := r.u32("public.nbPublic")
	if err != nil {
		return nil, err
	}
	nSec, err := r.u32("public.nbSecret")
	if err != nil {
		return nil, err
	}
	if nSec != 0 {
		return nil, errf(CodeMalformed, "public.nbSecret", "a public witness must have nbSecret = 0, got %d", nSec)
	}
	n, err := r.u32("public.len")
	if err != nil {
		return nil, err
	}
	if n != nPub {
		return nil, errf(CodeMalformed, "public.len", "vector length %d != nbPublic %d", n, nPub)
	}
	if int(n) > r.remaining()/32 {
		return nil, errf(CodeInvalidLength, "public", "truncated: %d elements need %d bytes, have %d", n, 32*int(n), r.remaining())
	}
	out := make([]fr.Element, n)
	for i := range out {
		f := fmt.Sprintf("public[%d]", i)
		s, _ := r.take(32, f)
		if out[i], err = FrCanonical(s, f); err != nil {
			return nil, err
		}
	}
	return out, r.done("public")
}

// verifyWithGnark runs gnark's own verifier (keccak hash-to-field, i.e. Solidity-targeted).
func verifyWithGnark(vk *Groth16VK, p *Groth16Proof, pub []fr.Element) error {
	g := &groth16bn254.VerifyingKey{}
	g.G1.Alpha, g.G1.Beta, g.G1.Delta, g.G1.K = vk.Alpha, vk.gnarkBeta1, vk.gnarkDelta1, vk.IC
	g.G2.Beta, g.G2.Gamma, g.G2.Delta = vk.Beta, vk.Gamma, vk.Delta
	g.PublicAndCommitmentCommitted = [][]int{}
	pf := &groth16bn254.Proof{Ar: p.A, Bs: p.B, Krs: p.C}
	if c := vk.Commitment; c != nil {
		idx := make([]int, len(c.Committed))
		for i, v := range c.Committed {
			idx[i] = int(v)
		}
		g.PublicAndCommitmentCommitted = [][]int{idx}
		g.CommitmentKeys = []pedersen.VerifyingKey{{G: c.G, GSigmaNeg: c.GSigmaNeg}}
		pf.Commitments = []bn.G1Affine{p.Commitment}
		pf.CommitmentPok = p.PoK
	}
	if err := g.Precompute(); err != nil {
		return err
	}
	return groth16bn254.Verify(pf, g, append([]fr.Element{}, pub...), solidity.WithVerifierTargetSolidityVerifier(backend.GROTH16))
}

// Groth16Normalized is the result of a normalize op.
type Groth16Normalized struct {
	VK     *Groth16VK
	Proof  *Groth16Proof
	Public []fr.Element
}

// NormalizeGnarkGroth16 decodes and validates gnark vk/proof/public bytes, verifies the proof
// with gnark's verifier and with Sheaf's (they must agree) and returns the canonical forms.
func NormalizeGnarkGroth16(vkb, proofb []byte, pub []fr.Element) (*Groth16Normalized, error) {
	vk, err := ParseGnarkGroth16VK(vkb)
	if err != nil {
		return nil, err
	}
	p, err := ParseGnarkGroth16Proof(proofb, vk)
	if err != nil {
		return nil, err
	}
	it := &Groth16Item{VK: vk, Proof: p, Public: pub}
	if err := it.checkCount(); err != nil {
		return nil, err
	}
	gerr := verifyWithGnark(vk, p, pub)
	serr := VerifyGroth16(it)
	switch {
	case gerr == nil && serr == nil:
		return &Groth16Normalized{VK: vk, Proof: p, Public: pub}, nil
	case gerr != nil && serr != nil:
		msg := "pairing check failed (gnark verifier: " + gerr.Error() + ")"
		if vk.Commitment != nil {
			msg += "; proofs with a commitment must be made with solidity.WithProverTargetSolidityVerifier (keccak hash-to-field)"
		}
		return nil, errf(CodeVerificationFailed, "proof", "%s", msg)
	default:
		return nil, errf(CodeInternal, "proof", "gnark verifier (%v) and sheaf verifier (%v) disagree", gerr, serr)
	}
}
