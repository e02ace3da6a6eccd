package verify

import (
	"encoding/json"
	"math/rand"
	"testing"
)

var knownCodes = map[string]bool{CodeMalformed: true, CodeUnsupportedFormat: true, CodeTooLarge: true,
	CodeInvalidLength: true, CodeInvalidPoint: true, CodeNotInSubgroup: true, CodePointAtInfinity: true,
	CodeNonCanonicalScalar: true, CodePublicInputCount: true, CodeVerificationFailed: true}

// Random byte mutations (flips, truncations, insertions) of real fixtures must never panic and
// every failure must carry a stable, non-INTERNAL code. (Some mutations legitimately succeed,
// e.g. JSON whitespace changes.)
func TestRandomMutationsAreRejectedCleanly(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	mutate := func(b []byte) []byte {
		c := clone(b)
		switch rng.Intn(4) {
		case 0:
			c[rng.Intn(len(c))] ^= byte(1 << rng.Intn(8))
		case 1:
			c = c[:rng.Intn(len(c))]
		case 2:
			i := rng.Intn(len(c) + 1)
			c = append(c[:i], append([]byte{byte(rng.Intn(256))}, c[i:]...)...)
		default:
			c[rng.Intn(len(c))] = byte(rng.Intn(256))
		}
		return c
	}
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			return
		}
		e := AsError(err)
		if !knownCodes[e.Code] {
			t.Fatalf("%s: unexpected code %s (%s)", what, e.Code, e.Message)
		}
	}
	g := loadG16(t, "groth16_n3")
	pub, _ := ParseGnarkPublicWitness(g.public)
	for i := 0; i < 300; i++ {
		_, err := NormalizeGnarkGroth16(mutate(g.vk), g.proof, pub)
		check("groth16 vk", err)
		_, err = NormalizeGnarkGroth16(g.vkRaw, mutate(g.proofRaw), pub)
		check("groth16 proof", err)
		_, err = ParseGnarkPublicWitness(mutate(g.public))
		check("witness", err)
	}
	pvk, pproof := readFixture(t, "plonk_n1", "vk.bin"), readFixture(t, "plonk_n1", "proof.bin")
	ppub, _ := ParseGnarkPublicWitness(readFixture(t, "plonk_n1", "public.bin"))
	for i := 0; i < 100; i++ {
		_, err := NormalizeGnarkPlonk(mutate(pvk), pproof, ppub)
		check("plonk vk", err)
		_, err = NormalizeGnarkPlonk(pvk, mutate(pproof), ppub)
		check("plonk proof", err)
	}
	f := loadSnarkjsPlonk(t)
	spub, _ := JSONPublic(f.public, "public")
	for i := 0; i < 300; i++ {
		_, err := NormalizeSnarkjsPlonk(json.RawMessage(mutate(f.vk)), f.proof, spub)
		check("snarkjs vk", err)
		_, err = NormalizeSnarkjsPlonk(f.vk, json.RawMessage(mutate(f.proof)), spub)
		check("snarkjs proof", err)
	}
}
