package verify

import (
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	bn "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"golang.org/x/crypto/sha3"
)

// Groth16VK is a validated Groth16 verifying key (at most one BSB22 commitment, as the
// gnark Solidity verifier supports).
type Groth16VK struct {
	Alpha              bn.G1Affine
	Beta, Gamma, Delta bn.G2Affine
	// IC has 1 + n_public + n_commitments entries (gnark's K; snarkjs' IC).
	IC         []bn.G1Affine
	Commitment *CommitmentKey
	// unused by verification; kept so a gnark vk can be re-emitted
	gnarkBeta1, gnarkDelta1 bn.G1Affine
}

// CommitmentKey is a Pedersen (BSB22) commitment verifying key.
type CommitmentKey struct {
	G, GSigmaNeg bn.G2Affine
	// Committed lists the 1-based public-witness indices hashed with the commitment.
	Committed []uint32
}

// NPublic is the number of public inputs a proof must carry.
func (vk *Groth16VK) NPublic() int {
	return len(vk.IC) - 1 - vk.NCommitments()
}

// NCommitments is 0 or 1.
func (vk *Groth16VK) NCommitments() int {
	if vk.Commitment == nil {
		return 0
	}
	return 1
}

// Groth16Proof is a validated proof.
type Groth16Proof struct {
	A          bn.G1Affine
	B          bn.G2Affine
	C          bn.G1Affine
	Commitment bn.G1Affine // only if the vk has a commitment
	PoK        bn.G1Affine
}

// ---- canonical encodings (spec: docs/sidecar.md) ----

// Canonical returns alpha1 | beta2 | gamma2 | delta2 | u32 n_ic | IC[..] and, only for keys
// with a commitment: u32 1 | G | GSigmaNeg | u32 n_committed | u32 index...
func (vk *Groth16VK) Canonical() []byte {
	out := make([]byte, 0, 64+3*128+4+64*len(vk.IC))
	out = append(out, G1ToEVM(&vk.Alpha)...)
	out = append(out, G2ToEVM(&vk.Beta)...)
	out = append(out, G2ToEVM(&vk.Gamma)...)
	out = append(out, G2ToEVM(&vk.Delta)...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(vk.IC)))
	for i := range vk.IC {
		out = append(out, G1ToEVM(&vk.IC[i])...)
	}
	if c := vk.Commitment; c != nil {
		out = binary.BigEndian.AppendUint32(out, 1)
		out = append(out, G2ToEVM(&c.G)...)
		out = append(out, G2ToEVM(&c.GSigmaNeg)...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(c.Committed)))
		for _, idx := range c.Committed {
			out = binary.BigEndian.AppendUint32(out, idx)
		}
	}
	return out
}

// maxIC bounds allocations from a hostile length prefix.
const maxIC = 1 << 16

// ParseCanonicalGroth16VK strictly decodes Canonical() bytes.
func ParseCanonicalGroth16VK(b []byte) (*Groth16VK, error) {
	r := &reader{b: b, raw: true}
	vk := &Groth16VK{}
	var err error
	s, err := r.take(64, "vk.alpha")
	if err != nil {
		return nil, err
	}
	if vk.Alpha, err = G1FromEVM(s, "vk.alpha", noInfinity); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		p    *bn.G2Affine
	}{{"vk.beta", &vk.Beta}, {"vk.gamma", &vk.Gamma}, {"vk.delta", &vk.Delta}} {
		if s, err = r.take(128, f.name); err != nil {
			return nil, err
		}
		if *f.p, err = g2FromEVM(s, f.name, noInfinity); err != nil {
			return nil, err
		}
	}
	n, err := r.u32("vk.n_ic")
	if err != nil {
		return nil, err
	}
	if n < 1 || n > maxIC {
		return nil, errf(CodeMalformed, "vk.n_ic", "n_ic must be in [1, %d], got %d", maxIC, n)
	}
	if r.remaining() < int(n)*64 {
		return nil, errf(CodeInvalidLength, "vk.IC", "truncated: %d IC points need %d bytes, have %d", n, n*64, r.remaining())
	}
	vk.IC = make([]bn.G1Affine, n)
	for i := range vk.IC {
		f := fmt.Sprintf("vk.IC[%d]", i)
		s, _ := r.take(64, f)
		if vk.IC[i], err = G1FromEVM(s, f, allowInfinity); err != nil {
			return nil, err
		}
	}
	if r.remaining() > 0 {
		nc, err := r.u32("vk.n_commitments")
		if err != nil {
			return nil, err
		}
		if nc != 1 {
			return nil, errf(CodeUnsupportedFormat, "vk.n_commitments", "only one commitment is supported, got %d (a key without commitments has no trailer)", nc)
		}
		c := &CommitmentKey{}
		if s, err = r.take(128, "vk.commitment.G"); err != nil {
			return nil, err
		}
		if c.G, err = g2FromEVM(s, "vk.commitment.G", noInfinity); err != nil {
			return nil, err
		}
		if s, err = r.take(128, "vk.commitment.GSigmaNeg"); err != nil {
			return nil, err
		}
		if c.GSigmaNeg, err = g2FromEVM(s, "vk.commitment.GSigmaNeg", noInfinity); err != nil {
			return nil, err
		}
		m, err := r.u32("vk.commitment.n_committed")
		if err != nil {
			return nil, err
		}
		if int(m) > r.remaining()/4 {
			return nil, errf(CodeInvalidLength, "vk.commitment.committed", "truncated: %d indices", m)
		}
		c.Committed = make([]uint32, m)
		for i := range c.Committed {
			c.Committed[i], _ = r.u32("vk.commitment.committed")
		}
		vk.Commitment = c
	}
	if err := r.done("vk"); err != nil {
		return nil, err
	}
	return vk, vk.checkStructure()
}

// checkStructure validates the index lists against the key's size.
func (vk *Groth16VK) checkStructure() error {
	if vk.NPublic() < 0 {
		return errf(CodeMalformed, "vk.IC", "IC has %d entries, fewer than 1 + commitments", len(vk.IC))
	}
	if c := vk.Commitment; c != nil {
		for i, idx := range c.Committed {
			if idx < 1 || int(idx) > vk.NPublic() {
				return errf(CodeMalformed, fmt.Sprintf("vk.commitment.committed[%d]", i), "index %d out of range [1, %d]", idx, vk.NPublic())
			}
		}
	}
	return nil
}

// CanonicalProof returns the EVM calldata layout: A | B | C (256 bytes) and, with a
// commitment, | D | PoK (384 bytes): exactly gnark's MarshalSolidity.
func (p *Groth16Proof) CanonicalProof(withCommitment bool) []byte {
	out := make([]byte, 0, 384)
	out = append(out, G1ToEVM(&p.A)...)
	out = append(out, G2ToEVM(&p.B)...)
	out = append(out, G1ToEVM(&p.C)...)
	if withCommitment {
		out = append(out, G1ToEVM(&p.Commitment)...)
		out = append(out, G1ToEVM(&p.PoK)...)
	}
	return out
}

// ParseCanonicalGroth16Proof strictly decodes CanonicalProof bytes for vk.
func ParseCanonicalGroth16Proof(b []byte, vk *Groth16VK) (*Groth16Proof, error) {
	want := 256 + 128*vk.NCommitments()
	if len(b) != want {
		return nil, errf(CodeInvalidLength, "proof", "proof must be %d bytes for this vk, got %d", want, len(b))
	}
	p := &Groth16Proof{}
	var err error
	if p.A, err = G1FromEVM(b[0:64], "proof.Ar", noInfinity); err != nil {
		return nil, err
	}
	if p.B, err = g2FromEVM(b[64:192], "proof.Bs", noInfinity); err != nil {
		return nil, err
	}
	if p.C, err = G1FromEVM(b[192:256], "proof.Krs", noInfinity); err != nil {
		return nil, err
	}
	if vk.Commitment != nil {
		if p.Commitment, err = G1FromEVM(b[256:320], "proof.Commitments[0]", noInfinity); err != nil {
			return nil, err
		}
		if p.PoK, err = G1FromEVM(b[320:384], "proof.CommitmentPok", noInfinity); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ParsePublicHex decodes 32-byte BE public inputs (0x optional), each < r.
func ParsePublicHex(vals []string, field string) ([]fr.Element, error) {
	out := make([]fr.Element, len(vals))
	for i, s := range vals {
		f := fmt.Sprintf("%s[%d]", field, i)
		b, err := decodeHex(s, f)
		if err != nil {
			return nil, err
		}
		if len(b) != 32 {
			return nil, errf(CodeInvalidLength, f, "public input must be 32 bytes, got %d", len(b))
		}
		if out[i], err = FrCanonical(b, f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ---- verification ----

// commitmentWire is the public-wire value gnark derives from a commitment, with the
// Solidity-compatible hash: keccak256(D.x | D.y | committed publics) mod r.
func commitmentWire(vk *Groth16VK, p *Groth16Proof, pub []fr.Element) fr.Element {
	h := sha3.NewLegacyKeccak256()
	h.Write(G1ToEVM(&p.Commitment))
	for _, idx := range vk.Commitment.Committed {
		h.Write(FrToBytes(&pub[idx-1]))
	}
	var e fr.Element
	e.SetBytes(h.Sum(nil)) // reduces mod r, as the verifier contract does
	return e
}

// publicSum is IC[0] + Σ pub_i IC[i] (+ commitment wire and point).
func publicSum(vk *Groth16VK, p *Groth16Proof, pub []fr.Element) (bn.G1Jac, error) {
	scalars := pub
	if vk.Commitment != nil {
		scalars = append(append([]fr.Element{}, pub...), commitmentWire(vk, p, pub))
	}
	var acc bn.G1Jac
	if len(scalars) > 0 {
		if _, err := acc.MultiExp(vk.IC[1:], scalars, ecc.MultiExpConfig{NbTasks: 1}); err != nil {
			return acc, err
		}
	}
	acc.AddMixed(&vk.IC[0])
	if vk.Commitment != nil {
		acc.AddMixed(&p.Commitment)
	}
	return acc, nil
}

// Groth16Item is one statement to verify.
type Groth16Item struct {
	VK     *Groth16VK
	Proof  *Groth16Proof
	Public []fr.Element
}

func (it *Groth16Item) checkCount() error {
	if len(it.Public) != it.VK.NPublic() {
		return errf(CodePublicInputCount, "public", "vk expects %d public inputs, got %d", it.VK.NPublic(), len(it.Public))
	}
	return nil
}

// VerifyGroth16 checks one proof: e(A,B) = e(alpha,beta) e(L,gamma) e(C,delta) and, with a
// commitment, e(D,GSigmaNeg) e(PoK,G) = 1.
func VerifyGroth16(it *Groth16Item) error {
	return VerifyGroth16Batch([]*Groth16Item{it}, nil)
}

// VerifyGroth16Batch checks all items with one multi-Miller loop and one final
// exponentiation, combining the equations with random 128-bit coefficients (rnd=nil uses a
// CSPRNG). Equations of items sharing a vk merge their alpha/beta, gamma and delta pairs.
// A nil error means every item is valid (except with probability <= 2^-128).
func VerifyGroth16Batch(items []*Groth16Item, rnd func() (*big.Int, error)) error {
	if rnd == nil {
		rnd = randomCoefficient
	}
	type group struct {
		vk              *Groth16VK
		alpha, l, c     bn.G1Jac
		pedersenD, pokG bn.G1Jac
	}
	groups := map[*Groth16VK]*group{}
	var order []*group
	var P []bn.G1Affine
	var Q []bn.G2Affine
	for i, it := range items {
		if err := it.checkCount(); err != nil {
			return err
		}
		g := groups[it.VK]
		if g == nil {
			g = &group{vk: it.VK}
			groups[it.VK] = g
			order = append(order, g)
		}
		var rho *big.Int
		if len(items) == 1 {
			rho = big.NewInt(1) // a single equation needs no randomisation
		} else {
			var err error
			if rho, err = rnd(); err != nil {
				return errf(CodeInternal, "", "randomness: %v", err)
			}
		}
		var a bn.G1Affine
		a.ScalarMultiplication(&it.Proof.A, rho)
		P = append(P, a)
		Q = append(Q, it.Proof.B)

		L, err := publicSum(it.VK, it.Proof, it.Public)
		if err != nil {
			return errf(CodeInternal, fmt.Sprintf("items[%d]", i), "msm: %v", err)
		}
		var t bn.G1Jac
		t.ScalarMultiplication(&L, rho)
		g.l.AddAssign(&t)
		var cj bn.G1Jac
		cj.FromAffine(&it.Proof.C)
		t.ScalarMultiplication(&cj, rho)
		g.c.AddAssign(&t)
		var aj bn.G1Jac
		aj.FromAffine(&it.VK.Alpha)
		t.ScalarMultiplication(&aj, rho)
		g.alpha.AddAssign(&t)
		if it.VK.Commitment != nil {
			// independent coefficient so the Pedersen check cannot cancel the Groth16 one
			sigma, err := rnd()
			if err != nil {
				return errf(CodeInternal, "", "randomness: %v", err)
			}
			var dj, pj bn.G1Jac
			dj.FromAffine(&it.Proof.Commitment)
			t.ScalarMultiplication(&dj, sigma)
			g.pedersenD.AddAssign(&t)
			pj.FromAffine(&it.Proof.PoK)
			t.ScalarMultiplication(&pj, sigma)
			g.pokG.AddAssign(&t)
		}
	}
	for _, g := range order {
		var x bn.G1Affine
		neg := func(j *bn.G1Jac) bn.G1Affine {
			x.FromJacobian(j)
			x.Neg(&x)
			return x
		}
		P = append(P, neg(&g.alpha), neg(&g.l), neg(&g.c))
		Q = append(Q, g.vk.Beta, g.vk.Gamma, g.vk.Delta)
		if g.vk.Commitment != nil {
			var d, k bn.G1Affine
			d.FromJacobian(&g.pedersenD)
			k.FromJacobian(&g.pokG)
			P = append(P, d, k)
			Q = append(Q, g.vk.Commitment.GSigmaNeg, g.vk.Commitment.G)
		}
	}
	ok, err := bn.PairingCheck(P, Q)
	if err != nil {
		return errf(CodeInternal, "", "pairing: %v", err)
	}
	if !ok {
		return errf(CodeVerificationFailed, "proof", "pairing check failed")
	}
	return nil
}

var coeffBound = new(big.Int).Lsh(big.NewInt(1), 128)

// VerifyGroth16Items verifies items as one batch and, only if the batch fails, one by one
// so each failing item is named. The result has one entry per item (nil = valid).
func VerifyGroth16Items(items []*Groth16Item) []error {
	res := make([]error, len(items))
	var ok []*Groth16Item
	var idx []int
	for i, it := range items {
		if err := it.checkCount(); err != nil {
			res[i] = err
			continue
		}
		ok = append(ok, it)
		idx = append(idx, i)
	}
	if len(ok) == 0 {
		return res
	}
	if err := VerifyGroth16Batch(ok, nil); err == nil {
		return res
	}
	for k, it := range ok {
		res[idx[k]] = VerifyGroth16(it)
	}
	return res
}
