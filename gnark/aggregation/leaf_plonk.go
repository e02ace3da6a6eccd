package aggregation

import (
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bn254"
	recplonk "github.com/consensys/gnark/std/recursion/plonk"
	"github.com/sheaf-zk/sheaf/gnark/verify"
)

// Leaf schemes (the "scheme" of a batch.json leaf).
const (
	SchemeGroth16 = "groth16"
	SchemePlonk   = "plonk"
)

// plonkParsed is a validated PLONK leaf: canonical vk bytes (hashed in-circuit) and the proof.
type plonkParsed struct {
	canonical []byte
	proof     *plonkbn254.Proof
}

// PlonkCanonicalVK decodes a gnark BN254 PLONK vk (WriteTo or WriteRawTo) with the normalizer's
// parser and returns Sheaf's canonical bytes (what vk_hash covers) plus the validated key.
func PlonkCanonicalVK(b []byte) ([]byte, *verify.GnarkPlonkVK, error) {
	vk, _, canonical, err := verify.LoadGnarkPlonkKey(b)
	return canonical, vk, err
}

// parsePlonk validates PLONK leaf i for the in-circuit verifier: strict decoding (the
// normalizer's parser), exactly the leaf's public-input count, no BSB22 commitments and a native
// verification with the recursion transcript. vk points at infinity (e.g. Qk of a circuit without
// constants) are fine: canonically 64 zero bytes, (0,0) in-circuit, which the emulated curve
// treats as infinity in its complete formulas and marshals with gnark's infinity flag.
func (l *Leaf) parsePlonk(i int) (*plonkParsed, error) {
	if len(l.Pubs) == 0 {
		return nil, leafErr(i, "public_inputs", "no public inputs")
	}
	vk, gvk, canonical, err := verify.LoadGnarkPlonkKey(l.VK)
	if err != nil {
		return nil, leafErr(i, "vk", "gnark PLONK vk: %v", err)
	}
	if len(vk.Qcp) != 0 {
		return nil, leafErr(i, "vk", "PLONK keys with BSB22 commitments (%d) are not aggregated recursively", len(vk.Qcp))
	}
	if vk.NbPublic != uint64(len(l.Pubs)) {
		return nil, leafErr(i, "public_inputs", "vk has %d public inputs, %d were given", vk.NbPublic, len(l.Pubs))
	}
	if len(canonical) != PlonkVKLen {
		return nil, leafErr(i, "vk", "canonical vk is %d bytes, want %d", len(canonical), PlonkVKLen)
	}
	pf, err := verify.ParseGnarkPlonkProof(l.Proof, vk)
	if err != nil {
		return nil, leafErr(i, "proof", "gnark PLONK proof: %v", err)
	}
	pubs := make([]fr.Element, len(l.Pubs))
	for k, b := range l.Pubs {
		if len(b) != scalarLen {
			return nil, leafErr(i, fmt.Sprintf("public_inputs[%d]", k), "must be 32 bytes, got %d", len(b))
		}
		if pubs[k], err = verify.FrCanonical(b, "public_inputs"); err != nil {
			return nil, leafErr(i, fmt.Sprintf("public_inputs[%d]", k), "not a canonical BN254 scalar (>= r)")
		}
	}
	if err := verify.VerifyGnarkPlonkTranscript(pf.Gnark(), gvk, pubs, verify.TranscriptRecursion); err != nil {
		if verify.VerifyGnarkPlonkTranscript(pf.Gnark(), gvk, pubs, verify.TranscriptSolidity) == nil {
			return nil, leafErr(i, "proof", "made for the Solidity verifier (SHA-256 transcript); in-circuit verification needs the recursion transcript (sheaf-gnark slice prove --target recursion)")
		}
		return nil, leafErr(i, "proof", "does not verify against vk and public_inputs (recursion transcript): %v", err)
	}
	return &plonkParsed{canonical: canonical, proof: pf.Gnark()}, nil
}

func assignPlonkSlot(w *PlonkLeafWitness, l *Leaf, p *plonkParsed) error {
	assignBytes(w.VK, w.Pubs, p.canonical, l.Pubs)
	var err error
	w.Proof, err = recplonk.ValueOfProof[sw_bn254.ScalarField, sw_bn254.G1Affine, sw_bn254.G2Affine](p.proof)
	return err
}

// PlonkVKHash is Sheaf's vk_hash of a canonical gnark PLONK vk.
func PlonkVKHash(canonical []byte) []byte { return keccak256(vkTag, []byte{schemePlonk}, canonical) }
