package aggregation

import (
	"encoding/json"
	"fmt"
	"math/big"
)

// snarkjs JSON is decimal strings: G1 [x, y, "1"], G2 [[x.c0, x.c1], [y.c0, y.c1], ["1","0"]]
// (c0 first, unlike the EVM/gnark/canonical order c1 first).

type snarkjsVK struct {
	Protocol string     `json:"protocol"`
	Curve    string     `json:"curve"`
	NPublic  int        `json:"nPublic"`
	Alpha1   []string   `json:"vk_alpha_1"`
	Beta2    [][]string `json:"vk_beta_2"`
	Gamma2   [][]string `json:"vk_gamma_2"`
	Delta2   [][]string `json:"vk_delta_2"`
	IC       [][]string `json:"IC"`
	// vk_alphabeta_12 is ignored: e(alpha, beta) is recomputed from alpha and beta.
}

type snarkjsProof struct {
	A        []string   `json:"pi_a"`
	B        [][]string `json:"pi_b"`
	C        []string   `json:"pi_c"`
	Protocol string     `json:"protocol"`
	Curve    string     `json:"curve"`
}

func dec32(s, field string) ([]byte, error) {
	x, ok := new(big.Int).SetString(s, 10)
	if !ok || x.Sign() < 0 || x.BitLen() > 256 {
		return nil, fmt.Errorf("%s: not a 256-bit decimal integer: %q", field, s)
	}
	b := make([]byte, 32)
	x.FillBytes(b)
	return b, nil
}

func sjG1(p []string, field string) ([]byte, error) {
	if len(p) != 3 || p[2] != "1" {
		return nil, fmt.Errorf("%s: want affine [x, y, \"1\"]", field)
	}
	x, err := dec32(p[0], field+".x")
	if err != nil {
		return nil, err
	}
	y, err := dec32(p[1], field+".y")
	if err != nil {
		return nil, err
	}
	return append(x, y...), nil
}

func sjG2(p [][]string, field string) ([]byte, error) {
	if len(p) != 3 || len(p[0]) != 2 || len(p[1]) != 2 || len(p[2]) != 2 || p[2][0] != "1" || p[2][1] != "0" {
		return nil, fmt.Errorf("%s: want affine [[x.c0,x.c1],[y.c0,y.c1],[\"1\",\"0\"]]", field)
	}
	out := make([]byte, 0, 128)
	for _, s := range []string{p[0][1], p[0][0], p[1][1], p[1][0]} { // c1 first
		b, err := dec32(s, field)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// LeafFromSnarkjs converts snarkjs Groth16 verification_key.json, proof.json and public.json
// (BN254 "bn128") to a canonical Leaf. The result is validated by Assign like any leaf.
func LeafFromSnarkjs(vkJSON, proofJSON, publicJSON []byte) (Leaf, error) {
	var vk snarkjsVK
	if err := json.Unmarshal(vkJSON, &vk); err != nil {
		return Leaf{}, fmt.Errorf("vk: %w", err)
	}
	var pr snarkjsProof
	if err := json.Unmarshal(proofJSON, &pr); err != nil {
		return Leaf{}, fmt.Errorf("proof: %w", err)
	}
	var pubs []string
	if err := json.Unmarshal(publicJSON, &pubs); err != nil {
		return Leaf{}, fmt.Errorf("public: %w", err)
	}
	if vk.Protocol != "groth16" || vk.Curve != "bn128" || pr.Protocol != "groth16" || pr.Curve != "bn128" {
		return Leaf{}, fmt.Errorf("want protocol groth16 on bn128, got vk %s/%s proof %s/%s", vk.Protocol, vk.Curve, pr.Protocol, pr.Curve)
	}
	if len(vk.IC) != vk.NPublic+1 || len(pubs) != vk.NPublic {
		return Leaf{}, fmt.Errorf("vk has nPublic=%d and %d IC points, public.json has %d values", vk.NPublic, len(vk.IC), len(pubs))
	}
	var l Leaf
	a, err := sjG1(vk.Alpha1, "vk_alpha_1")
	if err != nil {
		return Leaf{}, err
	}
	l.VK = append(l.VK, a...)
	for _, g := range []struct {
		p    [][]string
		name string
	}{{vk.Beta2, "vk_beta_2"}, {vk.Gamma2, "vk_gamma_2"}, {vk.Delta2, "vk_delta_2"}} {
		b, err := sjG2(g.p, g.name)
		if err != nil {
			return Leaf{}, err
		}
		l.VK = append(l.VK, b...)
	}
	n := uint32(len(vk.IC))
	l.VK = append(l.VK, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	for i, p := range vk.IC {
		b, err := sjG1(p, fmt.Sprintf("IC[%d]", i))
		if err != nil {
			return Leaf{}, err
		}
		l.VK = append(l.VK, b...)
	}
	pa, err := sjG1(pr.A, "pi_a")
	if err != nil {
		return Leaf{}, err
	}
	pb, err := sjG2(pr.B, "pi_b")
	if err != nil {
		return Leaf{}, err
	}
	pc, err := sjG1(pr.C, "pi_c")
	if err != nil {
		return Leaf{}, err
	}
	l.Proof = append(append(append(l.Proof, pa...), pb...), pc...)
	for i, s := range pubs {
		b, err := dec32(s, fmt.Sprintf("public[%d]", i))
		if err != nil {
			return Leaf{}, err
		}
		l.Pubs = append(l.Pubs, b)
	}
	return l, nil
}
