package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

var groth16Fixtures = []struct {
	name    string
	nPublic int
	commit  bool
}{
	{"groth16_n1", 1, false}, {"groth16_n2", 2, false}, {"groth16_n3", 3, false},
	{"groth16_n8", 8, false}, {"groth16_commit_n2", 2, true},
}

type g16fix struct {
	vk, vkRaw, proof, proofRaw, public []byte
	publicHex                          []string
	calldata                           struct {
		Proof  string   `json:"proof"`
		Public []string `json:"public_inputs"`
	}
}

func loadG16(t *testing.T, name string) *g16fix {
	f := &g16fix{
		vk: readFixture(t, name, "vk.bin"), vkRaw: readFixture(t, name, "vk.raw.bin"),
		proof: readFixture(t, name, "proof.bin"), proofRaw: readFixture(t, name, "proof.raw.bin"),
		public: readFixture(t, name, "public.bin"),
	}
	readJSON(t, name, "public.json", &f.publicHex)
	readJSON(t, name, "calldata.json", &f.calldata)
	return f
}

func TestNormalizeGnarkGroth16Fixtures(t *testing.T) {
	for _, fx := range groth16Fixtures {
		t.Run(fx.name, func(t *testing.T) {
			f := loadG16(t, fx.name)
			pubBin, err := ParseGnarkPublicWitness(f.public)
			if err != nil {
				t.Fatal(err)
			}
			pubHex, err := ParsePublicHex(f.publicHex, "public")
			if err != nil {
				t.Fatal(err)
			}
			var canon []byte
			for _, vkb := range [][]byte{f.vk, f.vkRaw} {
				for _, pb := range [][]byte{f.proof, f.proofRaw} {
					for _, pub := range [][]fr.Element{pubBin, pubHex} {
						n, err := NormalizeGnarkGroth16(vkb, pb, pub)
						if err != nil {
							t.Fatalf("normalize: %v", err)
						}
						if n.VK.NPublic() != fx.nPublic || (n.VK.NCommitments() == 1) != fx.commit {
							t.Fatalf("n_public %d commitments %d", n.VK.NPublic(), n.VK.NCommitments())
						}
						c := n.VK.Canonical()
						if canon == nil {
							canon = c
						} else if !bytes.Equal(canon, c) {
							t.Fatal("raw and compressed vk give different canonical bytes")
						}
						got := "0x" + hex.EncodeToString(n.Proof.CanonicalProof(fx.commit))
						if got != f.calldata.Proof {
							t.Fatalf("canonical proof != gnark MarshalSolidity\n%s\n%s", got, f.calldata.Proof)
						}
					}
				}
			}
			// canonical round trip, then verify from the canonical form alone
			vk2, err := ParseCanonicalGroth16VK(canon)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(vk2.Canonical(), canon) {
				t.Fatal("canonical vk does not round-trip")
			}
			pb, _ := DecodeHex(f.calldata.Proof, "proof")
			p2, err := ParseCanonicalGroth16Proof(pb, vk2)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyGroth16(&Groth16Item{VK: vk2, Proof: p2, Public: pubHex}); err != nil {
				t.Fatalf("canonical verify: %v", err)
			}
		})
	}
}

func TestGroth16Rejections(t *testing.T) {
	f := loadG16(t, "groth16_n2")
	pub, _ := ParseGnarkPublicWitness(f.public)
	norm := func(vk, proof []byte, pub []fr.Element) error {
		_, err := NormalizeGnarkGroth16(vk, proof, pub)
		return err
	}
	// raw proof layout: Ar 0..64 | Bs 64..192 | Krs 192..256 | u32 | PoK
	t.Run("truncated proof", func(t *testing.T) {
		wantCode(t, norm(f.vk, f.proofRaw[:len(f.proofRaw)-1], pub), CodeInvalidLength, "proof.CommitmentPok")
	})
	t.Run("padded proof", func(t *testing.T) {
		wantCode(t, norm(f.vk, append(clone(f.proofRaw), 0), pub), CodeInvalidLength, "proof")
	})
	t.Run("truncated vk", func(t *testing.T) {
		wantCode(t, norm(f.vk[:100], f.proof, pub), CodeInvalidLength, "vk.G2.Beta")
	})
	t.Run("padded vk", func(t *testing.T) {
		wantCode(t, norm(append(clone(f.vkRaw), 0, 0), f.proof, pub), CodeInvalidLength, "vk")
	})
	t.Run("Ar x >= p", func(t *testing.T) {
		b := clone(f.proofRaw)
		copy(b[0:32], fpModulusBytes())
		wantCode(t, norm(f.vk, b, pub), CodeNonCanonicalScalar, "proof.Ar")
	})
	t.Run("Bs coordinate >= p", func(t *testing.T) {
		b := clone(f.proofRaw)
		copy(b[64+96:64+128], fpModulusBytes())
		wantCode(t, norm(f.vk, b, pub), CodeNonCanonicalScalar, "proof.Bs")
	})
	t.Run("Ar not on curve", func(t *testing.T) {
		b := clone(f.proofRaw)
		b[63] ^= 1
		wantCode(t, norm(f.vk, b, pub), CodeInvalidPoint, "proof.Ar")
	})
	t.Run("Bs on twist outside subgroup", func(t *testing.T) {
		b := clone(f.proofRaw)
		q := twistPointOutsideSubgroup(t)
		copy(b[64:192], G2ToEVM(&q))
		wantCode(t, norm(f.vk, b, pub), CodeNotInSubgroup, "proof.Bs")
	})
	t.Run("Bs not on twist", func(t *testing.T) {
		b := clone(f.proofRaw)
		b[191] ^= 1
		wantCode(t, norm(f.vk, b, pub), CodeInvalidPoint, "proof.Bs")
	})
	t.Run("Bs infinity", func(t *testing.T) {
		b := clone(f.proofRaw)
		copy(b[64:192], make([]byte, 128))
		wantCode(t, norm(f.vk, b, pub), CodePointAtInfinity, "proof.Bs")
	})
	t.Run("compressed Krs without a curve point", func(t *testing.T) {
		b := clone(f.proof) // compressed: Ar 0..32 | Bs 32..96 | Krs 96..128
		for x := byte(1); ; x++ {
			b[127] = x
			if _, err := ParseGnarkGroth16Proof(b, mustVK(t, f.vk)); err != nil {
				wantCode(t, err, CodeInvalidPoint, "proof.Krs")
				return
			}
		}
	})
	t.Run("vk K[2] off curve", func(t *testing.T) {
		b := clone(f.vkRaw) // raw: alpha 64 | beta1 64 | beta2 128 | gamma2 128 | delta1 64 | delta2 128 | u32 | K
		off := 64 + 64 + 128 + 128 + 64 + 128 + 4 + 2*64
		b[off+63] ^= 1
		wantCode(t, norm(b, f.proof, pub), CodeInvalidPoint, "vk.G1.K[2]")
	})
	t.Run("vk gamma outside subgroup", func(t *testing.T) {
		b := clone(f.vkRaw)
		q := twistPointOutsideSubgroup(t)
		copy(b[256:384], G2ToEVM(&q))
		wantCode(t, norm(b, f.proof, pub), CodeNotInSubgroup, "vk.G2.Gamma")
	})
	t.Run("public >= r", func(t *testing.T) {
		b := clone(f.public)
		copy(b[12+32:12+64], fr.Modulus().Bytes())
		_, err := ParseGnarkPublicWitness(b)
		wantCode(t, err, CodeNonCanonicalScalar, "public[1]")
		_, err = ParsePublicHex([]string{"0x01", "0x" + hex.EncodeToString(fr.Modulus().Bytes())}, "public")
		wantCode(t, err, CodeInvalidLength, "public[0]")
		_, err = ParsePublicHex([]string{"0x" + hex.EncodeToString(fr.Modulus().Bytes())}, "public")
		wantCode(t, err, CodeNonCanonicalScalar, "public[0]")
	})
	t.Run("public witness with secret part", func(t *testing.T) {
		b := clone(f.public)
		binary.BigEndian.PutUint32(b[4:8], 1)
		_, err := ParseGnarkPublicWitness(b)
		wantCode(t, err, CodeMalformed, "public.nbSecret")
	})
	t.Run("wrong public count", func(t *testing.T) {
		wantCode(t, norm(f.vk, f.proof, pub[:1]), CodePublicInputCount, "public")
		wantCode(t, norm(f.vk, f.proof, append(clone32(pub), fr.One())), CodePublicInputCount, "public")
	})
	t.Run("tampered public", func(t *testing.T) {
		bad := clone32(pub)
		bad[0].Add(&bad[0], new(fr.Element).SetOne())
		wantCode(t, norm(f.vk, f.proof, bad), CodeVerificationFailed, "proof")
	})
	t.Run("tampered proof element", func(t *testing.T) {
		// Krs := Ar: a valid point, wrong proof
		b := clone(f.proofRaw)
		copy(b[192:256], b[0:64])
		wantCode(t, norm(f.vk, b, pub), CodeVerificationFailed, "proof")
	})
	t.Run("proof from another circuit", func(t *testing.T) {
		other := loadG16(t, "groth16_n3")
		wantCode(t, norm(f.vk, other.proof, pub), CodeVerificationFailed, "proof")
	})
	t.Run("non-zero PoK without commitments", func(t *testing.T) {
		b := clone(f.proofRaw)
		copy(b[260:324], b[0:64])
		wantCode(t, norm(f.vk, b, pub), CodeMalformed, "proof.CommitmentPok")
	})
}

func clone32(v []fr.Element) []fr.Element { return append([]fr.Element{}, v...) }

func mustVK(t *testing.T, b []byte) *Groth16VK {
	vk, err := ParseGnarkGroth16VK(b)
	if err != nil {
		t.Fatal(err)
	}
	return vk
}

func TestGroth16CommitmentTamper(t *testing.T) {
	f := loadG16(t, "groth16_commit_n2")
	pub, _ := ParseGnarkPublicWitness(f.public)
	// raw: Ar|Bs|Krs (256) | u32 1 | D (64) | PoK (64)
	b := clone(f.proofRaw)
	copy(b[260:324], b[0:64]) // D := Ar
	_, err := NormalizeGnarkGroth16(f.vk, b, pub)
	wantCode(t, err, CodeVerificationFailed, "proof")
	bad := clone32(pub)
	bad[1].SetUint64(5)
	_, err = NormalizeGnarkGroth16(f.vk, f.proof, bad)
	wantCode(t, err, CodeVerificationFailed, "proof")
}

func canonicalItem(t *testing.T, name string) *Groth16Item {
	f := loadG16(t, name)
	pub, _ := ParsePublicHex(f.publicHex, "public")
	n, err := NormalizeGnarkGroth16(f.vk, f.proof, pub)
	if err != nil {
		t.Fatal(err)
	}
	vk, err := ParseCanonicalGroth16VK(n.VK.Canonical())
	if err != nil {
		t.Fatal(err)
	}
	return &Groth16Item{VK: vk, Proof: n.Proof, Public: pub}
}

func TestGroth16Batch(t *testing.T) {
	var items []*Groth16Item
	for _, fx := range groth16Fixtures {
		it := canonicalItem(t, fx.name)
		items = append(items, it, &Groth16Item{VK: it.VK, Proof: it.Proof, Public: it.Public})
	}
	if err := VerifyGroth16Batch(items, nil); err != nil {
		t.Fatalf("batch of valid proofs: %v", err)
	}
	for _, e := range VerifyGroth16Items(items) {
		if e != nil {
			t.Fatal(e)
		}
	}
	// one bad proof among good ones: the batch fails and the fallback names it
	bad := *items[5]
	bad.Public = clone32(bad.Public)
	bad.Public[2].SetUint64(99)
	items[5] = &bad
	if err := VerifyGroth16Batch(items, nil); err == nil {
		t.Fatal("batch with a bad proof accepted")
	}
	res := VerifyGroth16Items(items)
	for i, e := range res {
		if (e != nil) != (i == 5) {
			t.Fatalf("item %d: %v", i, e)
		}
	}
	wantCode(t, res[5], CodeVerificationFailed, "proof")
}

// Two invalid proofs whose errors cancel under a fixed (non-random) combination must still
// be rejected with random coefficients: A' = 2A for item 0 and the pairing gap moved to item 1.
func TestGroth16BatchNeedsRandomness(t *testing.T) {
	it := canonicalItem(t, "groth16_n1")
	a2 := *it.Proof
	a2.A.ScalarMultiplication(&it.Proof.A, big.NewInt(2))
	a0 := *it.Proof
	a0.A.Sub(&it.Proof.A, &it.Proof.A) // the point at infinity
	// e(2A,B) + e(0*A,B) = 2 e(A,B): with coefficients (1,1) the pair would pass
	items := []*Groth16Item{{VK: it.VK, Proof: &a2, Public: it.Public}, {VK: it.VK, Proof: &a0, Public: it.Public}}
	one := func() (*big.Int, error) { return big.NewInt(1), nil }
	if err := VerifyGroth16Batch(items, one); err != nil {
		t.Fatalf("sanity: with fixed coefficients the forged pair should pass (%v)", err)
	}
	if err := VerifyGroth16Batch(items, nil); err == nil {
		t.Fatal("forged pair accepted with random coefficients")
	}
}

func TestCanonicalGroth16Rejections(t *testing.T) {
	it := canonicalItem(t, "groth16_n2")
	c := it.VK.Canonical()
	parse := func(b []byte) error { _, err := ParseCanonicalGroth16VK(b); return err }
	if len(c) != 64+3*128+4+3*64 {
		t.Fatalf("canonical vk length %d", len(c))
	}
	wantCode(t, parse(c[:len(c)-1]), CodeInvalidLength, "vk.IC")
	wantCode(t, parse(append(clone(c), 0, 0, 0, 2)), CodeUnsupportedFormat, "vk.n_commitments")
	wantCode(t, parse(append(clone(c), 0)), CodeInvalidLength, "vk.n_commitments")
	b := clone(c)
	copy(b[64:96], fpModulusBytes()) // beta.x.c1
	wantCode(t, parse(b), CodeNonCanonicalScalar, "vk.beta")
	b = clone(c)
	copy(b[64+128+128:64+128+128+128], make([]byte, 128)) // delta = infinity
	wantCode(t, parse(b), CodePointAtInfinity, "vk.delta")
	b = clone(c)
	binary.BigEndian.PutUint32(b[448:452], 0)
	wantCode(t, parse(b), CodeMalformed, "vk.n_ic")
	b = clone(c)
	b[len(b)-1] ^= 1 // IC[2].y
	wantCode(t, parse(b), CodeInvalidPoint, "vk.IC[2]")

	p := it.Proof.CanonicalProof(false)
	_, err := ParseCanonicalGroth16Proof(p[:255], it.VK)
	wantCode(t, err, CodeInvalidLength, "proof")
	q := clone(p)
	copy(q[192:256], make([]byte, 64))
	_, err = ParseCanonicalGroth16Proof(q, it.VK)
	wantCode(t, err, CodePointAtInfinity, "proof.Krs")
	// the commitment vk demands the 384-byte layout
	cm := canonicalItem(t, "groth16_commit_n2")
	_, err = ParseCanonicalGroth16Proof(cm.Proof.CanonicalProof(false), cm.VK)
	wantCode(t, err, CodeInvalidLength, "proof")
	cvk, err := ParseCanonicalGroth16VK(cm.VK.Canonical())
	if err != nil || cvk.NPublic() != 2 || cvk.NCommitments() != 1 {
		t.Fatalf("commitment vk round trip: %v", err)
	}
}
