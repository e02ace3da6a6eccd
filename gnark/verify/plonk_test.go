package verify

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
)

func TestNormalizeGnarkPlonkFixtures(t *testing.T) {
	for _, name := range []string{"plonk_n1", "plonk_n3"} {
		t.Run(name, func(t *testing.T) {
			pub, err := ParseGnarkPublicWitness(readFixture(t, name, "public.bin"))
			if err != nil {
				t.Fatal(err)
			}
			var cd struct {
				Proof string `json:"proof"`
			}
			readJSON(t, name, "calldata.json", &cd)
			var canon []byte
			for _, vkf := range []string{"vk.bin", "vk.raw.bin"} {
				for _, pf := range []string{"proof.bin", "proof.raw.bin"} {
					n, err := NormalizeGnarkPlonk(readFixture(t, name, vkf), readFixture(t, name, pf), pub)
					if err != nil {
						t.Fatalf("%s %s: %v", vkf, pf, err)
					}
					if n.NPublic != len(pub) || n.CanonicalVK[0] != PlonkProducerGnark {
						t.Fatalf("n_public %d tag %x", n.NPublic, n.CanonicalVK[0])
					}
					if canon != nil && !bytes.Equal(canon, n.CanonicalVK) {
						t.Fatal("raw and compressed vk give different canonical bytes")
					}
					canon = n.CanonicalVK
					if "0x"+hex.EncodeToString(n.Proof) != cd.Proof {
						t.Fatal("canonical proof != gnark MarshalSolidity")
					}
				}
			}
		})
	}
}

func TestGnarkPlonkRejections(t *testing.T) {
	vk := readFixture(t, "plonk_n3", "vk.bin")
	vkRaw := readFixture(t, "plonk_n3", "vk.raw.bin")
	proofRaw := readFixture(t, "plonk_n3", "proof.raw.bin")
	pub, _ := ParseGnarkPublicWitness(readFixture(t, "plonk_n3", "public.bin"))
	norm := func(v, p []byte, pub []fr.Element) error { _, err := NormalizeGnarkPlonk(v, p, pub); return err }

	wantCode(t, norm(vk, proofRaw[:len(proofRaw)-3], pub), CodeInvalidLength, "")
	wantCode(t, norm(vk, append(clone(proofRaw), 1), pub), CodeInvalidLength, "proof")
	wantCode(t, norm(vk[:len(vk)-1], proofRaw, pub), CodeInvalidLength, "")
	wantCode(t, norm(vk, proofRaw, pub[:2]), CodePublicInputCount, "public")
	b := clone(proofRaw)
	b[63] ^= 1 // LRO[0].Y
	wantCode(t, norm(vk, b, pub), CodeInvalidPoint, "proof.LRO[0]")
	b = clone(proofRaw)
	copy(b[64:96], fpModulusBytes())
	wantCode(t, norm(vk, b, pub), CodeNonCanonicalScalar, "proof.LRO[1]")
	// claimed values follow 8 raw G1 points and a u32 length
	b = clone(proofRaw)
	copy(b[8*64+4+32:8*64+4+64], fr.Modulus().Bytes())
	wantCode(t, norm(vk, b, pub), CodeNonCanonicalScalar, "proof.BatchedProof.ClaimedValues[1]")
	b = clone(proofRaw)
	copy(b[0:64], b[64:128]) // LRO[0] := LRO[1]
	wantCode(t, norm(vk, b, pub), CodeVerificationFailed, "proof")
	bad := clone32(pub)
	bad[2].SetUint64(1)
	wantCode(t, norm(vk, proofRaw, bad), CodeVerificationFailed, "proof")
	// vk: tamper the precomputed lines (last bytes before the u32 index count)
	v := clone(vkRaw)
	v[len(v)-5] ^= 1
	wantCode(t, norm(v, proofRaw, pub), CodeMalformed, "vk.Kzg.Lines")
	// vk: a point in the G2 part of the KZG key outside the subgroup
	v = clone(vkRaw)
	q := twistPointOutsideSubgroup(t)
	vkp := mustPlonkVK(t, vkRaw)
	g2b := G2ToEVM(&vkp.KzgG2[1])
	i := bytes.Index(v, g2b)
	if i < 0 {
		t.Fatal("G2[1] not found in raw vk")
	}
	copy(v[i:i+128], G2ToEVM(&q))
	wantCode(t, norm(v, proofRaw, pub), CodeNotInSubgroup, "vk.Kzg.G2[1]")
	// another circuit's proof
	other := readFixture(t, "plonk_n1", "proof.bin")
	wantCode(t, norm(readFixture(t, "plonk_n1", "vk.bin"), other, pub[:1]), CodeVerificationFailed, "proof")
}

func mustPlonkVK(t *testing.T, b []byte) *GnarkPlonkVK {
	vk, err := ParseGnarkPlonkVK(b)
	if err != nil {
		t.Fatal(err)
	}
	return vk
}

type snarkjsFix struct {
	vk, proof, public json.RawMessage
}

func loadSnarkjsPlonk(t *testing.T) snarkjsFix {
	return snarkjsFix{
		vk:     readFixture(t, "snarkjs_plonk", "plonk_vk.json"),
		proof:  readFixture(t, "snarkjs_plonk", "plonk_proof.json"),
		public: readFixture(t, "snarkjs_plonk", "public.json"),
	}
}

func TestSnarkjsPlonkAccepts(t *testing.T) {
	f := loadSnarkjsPlonk(t)
	pub, err := JSONPublic(f.public, "public")
	if err != nil {
		t.Fatal(err)
	}
	n, err := NormalizeSnarkjsPlonk(f.vk, f.proof, pub)
	if err != nil {
		t.Fatalf("real snarkjs PLONK proof rejected: %v", err)
	}
	if n.NPublic != 2 || n.CanonicalVK[0] != PlonkProducerSnarkjs || len(n.Proof) != 768 {
		t.Fatalf("unexpected result: n=%d tag=%x len=%d", n.NPublic, n.CanonicalVK[0], len(n.Proof))
	}
}

// mutate returns the JSON with one field replaced (by a JSON value).
func mutate(t *testing.T, raw json.RawMessage, key string, val any) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if val == nil {
		delete(m, key)
	} else {
		m[key] = val
	}
	b, _ := json.Marshal(m)
	return b
}

func TestSnarkjsPlonkRejections(t *testing.T) {
	f := loadSnarkjsPlonk(t)
	pub, _ := JSONPublic(f.public, "public")
	var proof map[string]any
	_ = json.Unmarshal(f.proof, &proof)
	norm := func(vk, p json.RawMessage, pub []fr.Element) error {
		_, err := NormalizeSnarkjsPlonk(vk, p, pub)
		return err
	}

	// tampered evaluation, tampered commitment (a different valid point), tampered public
	evalA := proof["eval_a"].(string)
	wantCode(t, norm(f.vk, mutate(t, f.proof, "eval_a", bumpDecimal(evalA)), pub), CodeVerificationFailed, "proof")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "Wxi", proof["Wxiw"]), pub), CodeVerificationFailed, "proof")
	bad := clone32(pub)
	bad[0].SetUint64(235)
	wantCode(t, norm(f.vk, f.proof, bad), CodeVerificationFailed, "proof")
	wantCode(t, norm(f.vk, f.proof, pub[:1]), CodePublicInputCount, "public")
	// JSON type strictness
	wantCode(t, norm(f.vk, mutate(t, f.proof, "eval_a", 5), pub), CodeMalformed, "proof.eval_a")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "eval_a", "0x05"), pub), CodeMalformed, "proof.eval_a")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "eval_a", "007"), pub), CodeMalformed, "proof.eval_a")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "eval_a", []string{evalA}), pub), CodeMalformed, "proof.eval_a")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "extra", "1"), pub), CodeMalformed, "proof.extra")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "T1", nil), pub), CodeMalformed, "proof.T1")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "eval_a", fr.Modulus().String()), pub), CodeNonCanonicalScalar, "proof.eval_a")
	a := proof["A"].([]any)
	wantCode(t, norm(f.vk, mutate(t, f.proof, "A", []any{a[0], bumpDecimal(a[1].(string)), "1"}), pub), CodeInvalidPoint, "proof.A")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "A", []any{a[0], a[1], "2"}), pub), CodeMalformed, "proof.A")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "A", []any{"0", "1", "0"}), pub), CodePointAtInfinity, "proof.A")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "A", []any{pModulus(), a[1], "1"}), pub), CodeNonCanonicalScalar, "proof.A")
	wantCode(t, norm(f.vk, mutate(t, f.proof, "protocol", "groth16"), pub), CodeUnsupportedFormat, "proof.protocol")
	// vk: X_2 on the twist but outside G2; wrong omega
	q := twistPointOutsideSubgroup(t)
	x2 := []any{[]string{q.X.A0.String(), q.X.A1.String()}, []string{q.Y.A0.String(), q.Y.A1.String()}, []string{"1", "0"}}
	wantCode(t, norm(mutate(t, f.vk, "X_2", x2), f.proof, pub), CodeNotInSubgroup, "vk.X_2")
	wantCode(t, norm(mutate(t, f.vk, "w", "5"), f.proof, pub), CodeMalformed, "vk.w")
	wantCode(t, norm(mutate(t, f.vk, "nPublic", "2"), f.proof, pub), CodeMalformed, "vk.nPublic")
	_, err := JSONPublic(json.RawMessage(`["234", 7]`), "public")
	wantCode(t, err, CodeMalformed, "public[1]")
}

func bumpDecimal(s string) string {
	// increment the last digit (with carry not needed for our fixtures: avoid a trailing 9)
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != '9' {
			b[i]++
			return string(b)
		}
		b[i] = '0'
	}
	return "1" + string(b)
}

func pModulus() string { return strings.TrimSpace(fpModulusBig()) }

func TestSnarkjsPlonkBatch(t *testing.T) {
	f := loadSnarkjsPlonk(t)
	pub, _ := JSONPublic(f.public, "public")
	vk, _ := ParseSnarkjsPlonkVK(f.vk)
	p, _ := ParseSnarkjsPlonkProof(f.proof)
	proofs := []*SnarkjsPlonkProof{p, p, p}
	pubs := [][]fr.Element{pub, pub, pub}
	if err := VerifySnarkjsPlonkBatch(vk, proofs, pubs); err != nil {
		t.Fatal(err)
	}
	bad := clone32(pub)
	bad[1].SetUint64(8)
	pubs[1] = bad
	wantCode(t, VerifySnarkjsPlonkBatch(vk, proofs, pubs), CodeVerificationFailed, "proof")
}

func gnarkPlonkObjects(t *testing.T, name string) (*plonkbn254.VerifyingKey, *plonkbn254.Proof, []fr.Element) {
	vk := &plonkbn254.VerifyingKey{}
	if _, err := vk.ReadFrom(bytes.NewReader(readFixture(t, name, "vk.bin"))); err != nil {
		t.Fatal(err)
	}
	p := &plonkbn254.Proof{}
	if _, err := p.ReadFrom(bytes.NewReader(readFixture(t, name, "proof.bin"))); err != nil {
		t.Fatal(err)
	}
	pub, err := ParseGnarkPublicWitness(readFixture(t, name, "public.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return vk, p, pub
}

// The port must agree with gnark's own verifier, alone and in batches.
func TestGnarkPlonkBatchAgreesWithGnark(t *testing.T) {
	for _, name := range []string{"plonk_n1", "plonk_n3"} {
		vk, p, pub := gnarkPlonkObjects(t, name)
		if err := plonkbn254.Verify(p, vk, pub); err != nil {
			t.Fatalf("%s: gnark rejects the fixture: %v", name, err)
		}
		if err := VerifyGnarkPlonkBatch(vk, []*plonkbn254.Proof{p}, [][]fr.Element{pub}); err != nil {
			t.Fatalf("%s: single: %v", name, err)
		}
		if err := VerifyGnarkPlonkBatch(vk, []*plonkbn254.Proof{p, p, p}, [][]fr.Element{pub, pub, pub}); err != nil {
			t.Fatalf("%s: batch: %v", name, err)
		}
		bad := clone32(pub)
		bad[0].SetUint64(12345)
		if plonkbn254.Verify(p, vk, bad) == nil {
			t.Fatal("gnark accepted a tampered public input")
		}
		wantCode(t, VerifyGnarkPlonkBatch(vk, []*plonkbn254.Proof{p, p}, [][]fr.Element{pub, bad}), CodeVerificationFailed, "proof")
		// a tampered opening proof passes the algebraic check but must fail the KZG batch
		tp := *p
		tp.ZShiftedOpening.H = p.BatchedProof.H
		if plonkbn254.Verify(&tp, vk, pub) == nil {
			t.Fatal("gnark accepted a tampered opening")
		}
		wantCode(t, VerifyGnarkPlonkBatch(vk, []*plonkbn254.Proof{p, &tp}, [][]fr.Element{pub, pub}), CodeVerificationFailed, "proof")
	}
}
