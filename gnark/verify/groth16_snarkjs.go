package verify

import (
	"encoding/json"
	"fmt"

	bn "github.com/consensys/gnark-crypto/ecc/bn254"
)

// ParseSnarkjsGroth16VK strictly reads a snarkjs Groth16 verification_key.json into the
// canonical key (same bytes as the gnark key for the same parameters). vk_alphabeta_12 is
// derived data: accepted but not used.
func ParseSnarkjsGroth16VK(raw json.RawMessage) (*Groth16VK, error) {
	m, err := jsonObject(raw, "vk", []string{"protocol", "curve", "nPublic", "vk_alpha_1", "vk_beta_2",
		"vk_gamma_2", "vk_delta_2", "IC"}, []string{"vk_alphabeta_12"})
	if err != nil {
		return nil, err
	}
	if err := expectString(m, "protocol", "groth16", "vk"); err != nil {
		return nil, err
	}
	if err := expectString(m, "curve", "bn128", "vk"); err != nil {
		return nil, err
	}
	n, err := jsonUint(m["nPublic"], "vk.nPublic", maxIC-1)
	if err != nil {
		return nil, err
	}
	vk := &Groth16VK{}
	if vk.Alpha, err = JSONG1(m["vk_alpha_1"], "vk.vk_alpha_1", noInfinity); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		k string
		p *bn.G2Affine
	}{{"vk_beta_2", &vk.Beta}, {"vk_gamma_2", &vk.Gamma}, {"vk_delta_2", &vk.Delta}} {
		if *f.p, err = JSONG2(m[f.k], "vk."+f.k, noInfinity); err != nil {
			return nil, err
		}
	}
	ic, err := jsonArray(m["IC"], "vk.IC", -1)
	if err != nil {
		return nil, err
	}
	if uint64(len(ic)) != n+1 {
		return nil, errf(CodeMalformed, "vk.IC", "IC has %d points, nPublic %d needs %d", len(ic), n, n+1)
	}
	vk.IC = make([]bn.G1Affine, len(ic))
	for i := range ic {
		if vk.IC[i], err = JSONG1(ic[i], fmt.Sprintf("vk.IC[%d]", i), allowInfinity); err != nil {
			return nil, err
		}
	}
	return vk, nil
}
