package verify

import (
	"encoding/binary"
	"encoding/json"
	"math/big"

	bn "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"golang.org/x/crypto/sha3"
)

// SnarkjsPlonkVK is a validated snarkjs (0.7.x) PLONK verification key.
type SnarkjsPlonkVK struct {
	NPublic                        uint32
	Power                          uint32
	K1, K2                         fr.Element
	Qm, Ql, Qr, Qo, Qc, S1, S2, S3 bn.G1Affine
	X2                             bn.G2Affine
	omega                          fr.Element
}

// Canonical: 0x02 | u32 nPublic | u32 power | k1 | k2 | Qm Ql Qr Qo Qc S1 S2 S3 | X_2 (EVM layouts).
func (vk *SnarkjsPlonkVK) Canonical() []byte {
	out := []byte{PlonkProducerSnarkjs}
	out = binary.BigEndian.AppendUint32(out, vk.NPublic)
	out = binary.BigEndian.AppendUint32(out, vk.Power)
	out = append(out, FrToBytes(&vk.K1)...)
	out = append(out, FrToBytes(&vk.K2)...)
	for _, p := range []*bn.G1Affine{&vk.Qm, &vk.Ql, &vk.Qr, &vk.Qo, &vk.Qc, &vk.S1, &vk.S2, &vk.S3} {
		out = append(out, G1ToEVM(p)...)
	}
	return append(out, G2ToEVM(&vk.X2)...)
}

// rootOfUnity returns the 2^power-th root of unity snarkjs uses (Fr.w[power] = 5^((r-1)/2^power)).
func rootOfUnity(power uint32) fr.Element {
	e := new(big.Int).Sub(fr.Modulus(), big.NewInt(1))
	e.Rsh(e, uint(power))
	var w fr.Element
	w.SetUint64(5)
	w.Exp(w, e)
	return w
}

// ParseSnarkjsPlonkVK strictly reads verification_key.json (protocol "plonk", curve "bn128").
func ParseSnarkjsPlonkVK(raw json.RawMessage) (*SnarkjsPlonkVK, error) {
	m, err := jsonObject(raw, "vk", []string{"protocol", "curve", "nPublic", "power", "k1", "k2",
		"Qm", "Ql", "Qr", "Qo", "Qc", "S1", "S2", "S3", "X_2", "w"}, nil)
	if err != nil {
		return nil, err
	}
	if err := expectString(m, "protocol", "plonk", "vk"); err != nil {
		return nil, err
	}
	if err := expectString(m, "curve", "bn128", "vk"); err != nil {
		return nil, err
	}
	vk := &SnarkjsPlonkVK{}
	n, err := jsonUint(m["nPublic"], "vk.nPublic", 1<<20)
	if err != nil {
		return nil, err
	}
	pw, err := jsonUint(m["power"], "vk.power", 28)
	if err != nil {
		return nil, err
	}
	if pw < 1 {
		return nil, errf(CodeMalformed, "vk.power", "power must be >= 1")
	}
	if n > 1<<pw {
		return nil, errf(CodeMalformed, "vk.nPublic", "nPublic %d exceeds the domain size 2^%d", n, pw)
	}
	vk.NPublic, vk.Power = uint32(n), uint32(pw)
	if vk.K1, err = JSONFr(m["k1"], "vk.k1"); err != nil {
		return nil, err
	}
	if vk.K2, err = JSONFr(m["k2"], "vk.k2"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		k string
		p *bn.G1Affine
	}{{"Qm", &vk.Qm}, {"Ql", &vk.Ql}, {"Qr", &vk.Qr}, {"Qo", &vk.Qo}, {"Qc", &vk.Qc}, {"S1", &vk.S1}, {"S2", &vk.S2}, {"S3", &vk.S3}} {
		if *f.p, err = JSONG1(m[f.k], "vk."+f.k, allowInfinity); err != nil {
			return nil, err
		}
	}
	if vk.X2, err = JSONG2(m["X_2"], "vk.X_2", noInfinity); err != nil {
		return nil, err
	}
	w, err := JSONFr(m["w"], "vk.w")
	if err != nil {
		return nil, err
	}
	vk.omega = rootOfUnity(vk.Power)
	if !w.Equal(&vk.omega) {
		return nil, errf(CodeMalformed, "vk.w", "w is not the 2^%d-th root of unity snarkjs uses", vk.Power)
	}
	return vk, nil
}

// SnarkjsPlonkProof is a validated snarkjs PLONK proof.
type SnarkjsPlonkProof struct {
	A, B, C, Z, T1, T2, T3, Wxi, Wxiw           bn.G1Affine
	EvalA, EvalB, EvalC, EvalS1, EvalS2, EvalZw fr.Element
}

// ParseSnarkjsPlonkProof strictly reads proof.json.
func ParseSnarkjsPlonkProof(raw json.RawMessage) (*SnarkjsPlonkProof, error) {
	m, err := jsonObject(raw, "proof", []string{"A", "B", "C", "Z", "T1", "T2", "T3", "Wxi", "Wxiw",
		"eval_a", "eval_b", "eval_c", "eval_s1", "eval_s2", "eval_zw"}, []string{"protocol", "curve"})
	if err != nil {
		return nil, err
	}
	if _, ok := m["protocol"]; ok {
		if err := expectString(m, "protocol", "plonk", "proof"); err != nil {
			return nil, err
		}
	}
	if _, ok := m["curve"]; ok {
		if err := expectString(m, "curve", "bn128", "proof"); err != nil {
			return nil, err
		}
	}
	p := &SnarkjsPlonkProof{}
	for _, f := range []struct {
		k string
		p *bn.G1Affine
	}{{"A", &p.A}, {"B", &p.B}, {"C", &p.C}, {"Z", &p.Z}, {"T1", &p.T1}, {"T2", &p.T2}, {"T3", &p.T3}, {"Wxi", &p.Wxi}, {"Wxiw", &p.Wxiw}} {
		if *f.p, err = JSONG1(m[f.k], "proof."+f.k, noInfinity); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		k string
		e *fr.Element
	}{{"eval_a", &p.EvalA}, {"eval_b", &p.EvalB}, {"eval_c", &p.EvalC}, {"eval_s1", &p.EvalS1}, {"eval_s2", &p.EvalS2}, {"eval_zw", &p.EvalZw}} {
		if *f.e, err = JSONFr(m[f.k], "proof."+f.k); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Canonical is the snarkjs Solidity verifier's uint256[24] proof: A B C Z T1 T2 T3 Wxi Wxiw |
// eval_a eval_b eval_c eval_s1 eval_s2 eval_zw (768 bytes).
func (p *SnarkjsPlonkProof) Canonical() []byte {
	out := make([]byte, 0, 768)
	for _, q := range []*bn.G1Affine{&p.A, &p.B, &p.C, &p.Z, &p.T1, &p.T2, &p.T3, &p.Wxi, &p.Wxiw} {
		out = append(out, G1ToEVM(q)...)
	}
	for _, e := range []*fr.Element{&p.EvalA, &p.EvalB, &p.EvalC, &p.EvalS1, &p.EvalS2, &p.EvalZw} {
		out = append(out, FrToBytes(e)...)
	}
	return out
}

// keccakTranscript mirrors snarkjs' Keccak256Transcript: points as x|y BE (infinity = zeros),
// scalars as 32-byte BE, challenge = keccak256(buffer) mod r.
type keccakTranscript struct{ buf []byte }

func (t *keccakTranscript) point(p *bn.G1Affine) { t.buf = append(t.buf, G1ToEVM(p)...) }
func (t *keccakTranscript) scalar(e *fr.Element) { t.buf = append(t.buf, FrToBytes(e)...) }
func (t *keccakTranscript) challenge() fr.Element {
	h := sha3.NewLegacyKeccak256()
	h.Write(t.buf)
	var e fr.Element
	e.SetBytes(h.Sum(nil))
	t.buf = t.buf[:0]
	return e
}

// snarkjsPlonkReduce runs everything of snarkjs 0.7.x src/plonk_verify.js up to the final
// pairing and returns its two G1 inputs.
func snarkjsPlonkReduce(vk *SnarkjsPlonkVK, p *SnarkjsPlonkProof, pub []fr.Element) (*snarkjsPairing, error) {
	if len(pub) != int(vk.NPublic) {
		return nil, errf(CodePublicInputCount, "public", "vk expects %d public inputs, got %d", vk.NPublic, len(pub))
	}
	// challenges
	var t keccakTranscript
	for _, q := range []*bn.G1Affine{&vk.Qm, &vk.Ql, &vk.Qr, &vk.Qo, &vk.Qc, &vk.S1, &vk.S2, &vk.S3} {
		t.point(q)
	}
	for i := range pub {
		t.scalar(&pub[i])
	}
	t.point(&p.A)
	t.point(&p.B)
	t.point(&p.C)
	beta := t.challenge()
	t.scalar(&beta)
	gamma := t.challenge()
	t.scalar(&beta)
	t.scalar(&gamma)
	t.point(&p.Z)
	alpha := t.challenge()
	t.scalar(&alpha)
	t.point(&p.T1)
	t.point(&p.T2)
	t.point(&p.T3)
	xi := t.challenge()
	t.scalar(&xi)
	for _, e := range []*fr.Element{&p.EvalA, &p.EvalB, &p.EvalC, &p.EvalS1, &p.EvalS2, &p.EvalZw} {
		t.scalar(e)
	}
	var v [6]fr.Element
	v[1] = t.challenge()
	for i := 2; i < 6; i++ {
		v[i].Mul(&v[i-1], &v[1])
	}
	t.point(&p.Wxi)
	t.point(&p.Wxiw)
	u := t.challenge()

	// Lagrange evaluations L_i(xi), i = 1..max(1, nPublic)
	xin := xi
	for i := uint32(0); i < vk.Power; i++ {
		xin.Square(&xin)
	}
	var one, zh, n fr.Element
	one.SetOne()
	zh.Sub(&xin, &one)
	n.SetUint64(1 << vk.Power)
	nl := int(vk.NPublic)
	if nl < 1 {
		nl = 1
	}
	L := make([]fr.Element, nl+1)
	w := one
	for i := 1; i <= nl; i++ {
		var num, den fr.Element
		num.Mul(&w, &zh)
		den.Sub(&xi, &w).Mul(&den, &n)
		if den.IsZero() {
			return nil, errf(CodeVerificationFailed, "proof", "evaluation point hits the domain")
		}
		den.Inverse(&den)
		L[i].Mul(&num, &den)
		w.Mul(&w, &vk.omega)
	}
	// PI(xi)
	var pi, tmp fr.Element
	for i := range pub {
		tmp.Mul(&pub[i], &L[i+1])
		pi.Sub(&pi, &tmp)
	}
	// r0
	var alpha2, e2, e3a, e3b, e3c, e3, r0 fr.Element
	alpha2.Square(&alpha)
	e2.Mul(&L[1], &alpha2)
	e3a.Mul(&beta, &p.EvalS1).Add(&e3a, &p.EvalA).Add(&e3a, &gamma)
	e3b.Mul(&beta, &p.EvalS2).Add(&e3b, &p.EvalB).Add(&e3b, &gamma)
	e3c.Add(&p.EvalC, &gamma)
	e3.Mul(&e3a, &e3b).Mul(&e3, &e3c).Mul(&e3, &p.EvalZw).Mul(&e3, &alpha)
	r0.Sub(&pi, &e2).Sub(&r0, &e3)

	// D = d1 + d2 - d3 - d4 as one MSM
	var ab, betaxi, d2a1, d2a2, d2a3, d2a, d2b, d2, d3c, d3, xin2, negZh, negZhXin, negZhXin2, negD3 fr.Element
	ab.Mul(&p.EvalA, &p.EvalB)
	betaxi.Mul(&beta, &xi)
	d2a1.Add(&p.EvalA, &betaxi).Add(&d2a1, &gamma)
	d2a2.Mul(&betaxi, &vk.K1).Add(&d2a2, &p.EvalB).Add(&d2a2, &gamma)
	d2a3.Mul(&betaxi, &vk.K2).Add(&d2a3, &p.EvalC).Add(&d2a3, &gamma)
	d2a.Mul(&d2a1, &d2a2).Mul(&d2a, &d2a3).Mul(&d2a, &alpha)
	d2b.Mul(&L[1], &alpha2)
	d2.Add(&d2a, &d2b).Add(&d2, &u)
	d3c.Mul(&alpha, &beta).Mul(&d3c, &p.EvalZw)
	d3.Mul(&e3a, &e3b).Mul(&d3, &d3c) // d3a = e3a, d3b = e3b
	negD3.Neg(&d3)
	xin2.Square(&xin)
	negZh.Neg(&zh)
	negZhXin.Mul(&negZh, &xin)
	negZhXin2.Mul(&negZh, &xin2)

	// F = D + v1 A + v2 B + v3 C + v4 S1 + v5 S2
	// E = (-r0 + v1 a + v2 b + v3 c + v4 s1 + v5 s2 + u zw) G1
	var e, x fr.Element
	e.Neg(&r0)
	for i, ev := range []*fr.Element{&p.EvalA, &p.EvalB, &p.EvalC, &p.EvalS1, &p.EvalS2} {
		x.Mul(&v[i+1], ev)
		e.Add(&e, &x)
	}
	x.Mul(&u, &p.EvalZw)
	e.Add(&e, &x)
	var negE fr.Element
	negE.Neg(&e)

	// B1 = xi Wxi + u xi w Wxiw + F - E ; A1 = Wxi + u Wxiw
	var s fr.Element
	s.Mul(&u, &xi).Mul(&s, &vk.omega)
	_, _, g1, _ := bn.Generators()
	points := []bn.G1Affine{vk.Qm, vk.Ql, vk.Qr, vk.Qo, vk.Qc, p.Z, vk.S3, p.T1, p.T2, p.T3,
		p.A, p.B, p.C, vk.S1, vk.S2, g1, p.Wxi, p.Wxiw}
	scalars := []fr.Element{ab, p.EvalA, p.EvalB, p.EvalC, one, d2, negD3, negZh, negZhXin, negZhXin2,
		v[1], v[2], v[3], v[4], v[5], negE, xi, s}
	var B1 bn.G1Affine
	if _, err := B1.MultiExp(points, scalars, ecc1Task); err != nil {
		return nil, errf(CodeInternal, "", "msm: %v", err)
	}
	var A1 bn.G1Affine
	if _, err := A1.MultiExp([]bn.G1Affine{p.Wxi, p.Wxiw}, []fr.Element{one, u}, ecc1Task); err != nil {
		return nil, errf(CodeInternal, "", "msm: %v", err)
	}
	return &snarkjsPairing{A1: A1, B1: B1}, nil
}

// snarkjsPairing holds the final check e(-A1, X_2) e(B1, g2) = 1 of one proof.
type snarkjsPairing struct{ A1, B1 bn.G1Affine }

// VerifySnarkjsPlonk is a port of snarkjs 0.7.x src/plonk_verify.js.
func VerifySnarkjsPlonk(vk *SnarkjsPlonkVK, p *SnarkjsPlonkProof, pub []fr.Element) error {
	return VerifySnarkjsPlonkBatch(vk, []*SnarkjsPlonkProof{p}, [][]fr.Element{pub})
}

// VerifySnarkjsPlonkBatch checks proofs of one vk with a single 2-pairing product: the final
// KZG equations are combined with random 128-bit coefficients (CSPRNG).
func VerifySnarkjsPlonkBatch(vk *SnarkjsPlonkVK, proofs []*SnarkjsPlonkProof, pubs [][]fr.Element) error {
	var A, B bn.G1Jac
	for i, p := range proofs {
		c, err := snarkjsPlonkReduce(vk, p, pubs[i])
		if err != nil {
			return err
		}
		var a, b bn.G1Jac
		a.FromAffine(&c.A1)
		b.FromAffine(&c.B1)
		if len(proofs) > 1 {
			rho, err := randomCoefficient()
			if err != nil {
				return errf(CodeInternal, "", "randomness: %v", err)
			}
			a.ScalarMultiplication(&a, rho)
			b.ScalarMultiplication(&b, rho)
		}
		A.AddAssign(&a)
		B.AddAssign(&b)
	}
	var a1, b1 bn.G1Affine
	a1.FromJacobian(&A)
	a1.Neg(&a1)
	b1.FromJacobian(&B)
	_, _, _, g2 := bn.Generators()
	ok, err := bn.PairingCheck([]bn.G1Affine{a1, b1}, []bn.G2Affine{vk.X2, g2})
	if err != nil {
		return errf(CodeInternal, "", "pairing: %v", err)
	}
	if !ok {
		return errf(CodeVerificationFailed, "proof", "snarkjs PLONK pairing check failed")
	}
	return nil
}

// NormalizeSnarkjsPlonk validates snarkjs JSON vk/proof/public and verifies natively.
func NormalizeSnarkjsPlonk(vkJSON, proofJSON json.RawMessage, pub []fr.Element) (*PlonkNormalized, error) {
	key, err := snarkjsPlonkKeys.get(vkJSON, func(raw []byte) (*snarkjsPlonkKey, error) {
		vk, err := ParseSnarkjsPlonkVK(raw)
		if err != nil {
			return nil, err
		}
		return &snarkjsPlonkKey{vk: vk, canonical: vk.Canonical()}, nil
	})
	if err != nil {
		return nil, err
	}
	p, err := ParseSnarkjsPlonkProof(proofJSON)
	if err != nil {
		return nil, err
	}
	if err := VerifySnarkjsPlonk(key.vk, p, pub); err != nil {
		return nil, err
	}
	return &PlonkNormalized{CanonicalVK: key.canonical, Proof: p.Canonical(), Public: pub, NPublic: int(key.vk.NPublic)}, nil
}
