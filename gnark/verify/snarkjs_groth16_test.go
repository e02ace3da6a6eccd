package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
)

// snarkjsGroth16Canonical builds the canonical Groth16 vk from snarkjs verification_key.json,
// the way the Python normalizer must (G2 JSON lists c0 first; canonical is c1 first).
func snarkjsGroth16Canonical(t *testing.T, raw json.RawMessage) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	out := []byte{}
	a, err := JSONG1(m["vk_alpha_1"], "vk_alpha_1", noInfinity)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, G1ToEVM(&a)...)
	for _, k := range []string{"vk_beta_2", "vk_gamma_2", "vk_delta_2"} {
		q, err := JSONG2(m[k], k, noInfinity)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, G2ToEVM(&q)...)
	}
	var ic []json.RawMessage
	_ = json.Unmarshal(m["IC"], &ic)
	out = binary.BigEndian.AppendUint32(out, uint32(len(ic)))
	for _, r := range ic {
		p, err := JSONG1(r, "IC", allowInfinity)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, G1ToEVM(&p)...)
	}
	return out
}

func TestSnarkjsGroth16ThroughCanonicalForm(t *testing.T) {
	vkb := snarkjsGroth16Canonical(t, readFixture(t, "snarkjs_plonk", "groth16_vk.json"))
	vk, err := ParseCanonicalGroth16VK(vkb)
	if err != nil {
		t.Fatal(err)
	}
	var pj map[string]json.RawMessage
	_ = json.Unmarshal(readFixture(t, "snarkjs_plonk", "groth16_proof.json"), &pj)
	a, _ := JSONG1(pj["pi_a"], "pi_a", noInfinity)
	b, err := JSONG2(pj["pi_b"], "pi_b", noInfinity)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := JSONG1(pj["pi_c"], "pi_c", noInfinity)
	proof := append(append(G1ToEVM(&a), G2ToEVM(&b)...), G1ToEVM(&c)...)
	p, err := ParseCanonicalGroth16Proof(proof, vk)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := JSONPublic(readFixture(t, "snarkjs_plonk", "groth16_public.json"), "public")
	if err != nil {
		t.Fatal(err)
	}
	items := []*Groth16Item{{VK: vk, Proof: p, Public: pub}, canonicalItem(t, "groth16_n2")}
	if err := VerifyGroth16Batch(items, nil); err != nil {
		t.Fatalf("snarkjs-origin proof in a mixed batch: %v", err)
	}
	pub[0].SetUint64(1)
	if err := VerifyGroth16(&Groth16Item{VK: vk, Proof: p, Public: pub}); err == nil {
		t.Fatal("tampered snarkjs public input accepted")
	}
}

// The sidecar's own snarkjs vk parser gives exactly the bytes the Python recipe builds.
func TestParseSnarkjsGroth16VK(t *testing.T) {
	raw := readFixture(t, "snarkjs_plonk", "groth16_vk.json")
	vk, err := ParseSnarkjsGroth16VK(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(vk.Canonical(), snarkjsGroth16Canonical(t, raw)) || vk.NPublic() != 2 {
		t.Fatal("canonical bytes differ")
	}
	_, err = ParseSnarkjsGroth16VK(mutate(t, raw, "nPublic", 3))
	wantCode(t, err, CodeMalformed, "vk.IC")
	_, err = ParseSnarkjsGroth16VK(mutate(t, raw, "protocol", "plonk"))
	wantCode(t, err, CodeUnsupportedFormat, "vk.protocol")
	q := twistPointOutsideSubgroup(t)
	g2 := []any{[]string{q.X.A0.String(), q.X.A1.String()}, []string{q.Y.A0.String(), q.Y.A1.String()}, []string{"1", "0"}}
	_, err = ParseSnarkjsGroth16VK(mutate(t, raw, "vk_delta_2", g2))
	wantCode(t, err, CodeNotInSubgroup, "vk.vk_delta_2")
}
