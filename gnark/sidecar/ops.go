package sidecar

import (
	"encoding/json"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/sheaf-zk/sheaf/gnark/buildinfo"
	"github.com/sheaf-zk/sheaf/gnark/procproto"
	"github.com/sheaf-zk/sheaf/gnark/verify"
)

func opVersion(*procproto.Request) (any, error) { return buildinfo.Get(), nil }

type normalizeReq struct {
	procproto.Envelope
	Format    string          `json:"format"`
	VK        json.RawMessage `json:"vk"`
	Proof     json.RawMessage `json:"proof"`
	Public    json.RawMessage `json:"public"`
	PublicHex []string        `json:"public_hex"`
}

func rawString(raw json.RawMessage, field string) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: field, Message: "expected a base64 string"}
	}
	return &s, nil
}

// gnarkPublic returns public inputs from exactly one of "public" (base64 witness) or "public_hex".
func gnarkPublic(req *normalizeReq) ([]fr.Element, error) {
	pubB64, err := rawString(req.Public, "public")
	if err != nil {
		return nil, err
	}
	switch {
	case pubB64 != nil && req.PublicHex != nil:
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: "public", Message: "give either public or public_hex, not both"}
	case pubB64 != nil:
		b, err := b64(pubB64, "public")
		if err != nil {
			return nil, err
		}
		return verify.ParseGnarkPublicWitness(b)
	case req.PublicHex != nil:
		return verify.ParsePublicHex(req.PublicHex, "public")
	default:
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: "public", Message: "missing public (base64 witness) or public_hex"}
	}
}

func gnarkBlobs(req *normalizeReq) (vk, proof []byte, err error) {
	vs, err := rawString(req.VK, "vk")
	if err != nil {
		return nil, nil, err
	}
	ps, err := rawString(req.Proof, "proof")
	if err != nil {
		return nil, nil, err
	}
	if vk, err = b64(vs, "vk"); err != nil {
		return nil, nil, err
	}
	if proof, err = b64(ps, "proof"); err != nil {
		return nil, nil, err
	}
	return vk, proof, nil
}

func publicHexList(pub []fr.Element) []string {
	out := make([]string, len(pub))
	for i := range pub {
		out[i] = hex0x(verify.FrToBytes(&pub[i]))
	}
	return out
}

func opGroth16Normalize(r *procproto.Request) (any, error) {
	var req normalizeReq
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	if req.Format != "gnark" {
		return nil, &verify.Error{Code: verify.CodeUnsupportedFormat, Field: "format", Message: fmt.Sprintf("groth16.normalize supports format \"gnark\", got %q", req.Format)}
	}
	vkb, pb, err := gnarkBlobs(&req)
	if err != nil {
		return nil, err
	}
	pub, err := gnarkPublic(&req)
	if err != nil {
		return nil, err
	}
	n, err := verify.NormalizeGnarkGroth16(vkb, pb, pub)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"canonical_vk":  hex0x(n.VK.Canonical()),
		"proof":         hex0x(n.Proof.CanonicalProof(n.VK.Commitment != nil)),
		"public_inputs": publicHexList(n.Public),
		"n_public":      n.VK.NPublic(),
		"commitments":   n.VK.NCommitments(),
	}, nil
}

type batchItem struct {
	CanonicalVK  *string  `json:"canonical_vk"`
	Proof        *string  `json:"proof"`
	PublicInputs []string `json:"public_inputs"`
}

type batchReq struct {
	procproto.Envelope
	Items []batchItem `json:"items"`
}

// MaxBatch bounds one verify_batch request.
const MaxBatch = 4096

func opGroth16VerifyBatch(r *procproto.Request) (any, error) {
	var req batchReq
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	if req.Items == nil {
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: "items", Message: "missing items list"}
	}
	if len(req.Items) > MaxBatch {
		return nil, &verify.Error{Code: verify.CodeTooLarge, Field: "items", Message: fmt.Sprintf("at most %d items per batch", MaxBatch)}
	}
	results := make([]map[string]any, len(req.Items))
	var items []*verify.Groth16Item
	var idx []int
	vkCache := map[string]*verify.Groth16VK{} // same vk bytes -> same *VK, so the batch merges its terms
	for i, it := range req.Items {
		item, err := parseBatchItem(it, vkCache)
		if err != nil {
			e := verify.AsError(err)
			results[i] = map[string]any{"ok": false, "code": e.Code, "field": e.Field, "message": e.Message}
			continue
		}
		items = append(items, item)
		idx = append(idx, i)
	}
	for k, err := range verify.VerifyGroth16Items(items) {
		if err != nil {
			e := verify.AsError(err)
			results[idx[k]] = map[string]any{"ok": false, "code": e.Code, "field": e.Field, "message": e.Message}
		} else {
			results[idx[k]] = map[string]any{"ok": true}
		}
	}
	return map[string]any{"results": results}, nil
}

func parseBatchItem(it batchItem, vkCache map[string]*verify.Groth16VK) (*verify.Groth16Item, error) {
	if it.CanonicalVK == nil {
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: "canonical_vk", Message: "missing"}
	}
	if it.Proof == nil {
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: "proof", Message: "missing"}
	}
	if it.PublicInputs == nil {
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: "public_inputs", Message: "missing"}
	}
	vk, ok := vkCache[*it.CanonicalVK]
	if !ok {
		vkb, err := verify.DecodeHex(*it.CanonicalVK, "canonical_vk")
		if err != nil {
			return nil, err
		}
		if vk, err = verify.ParseCanonicalGroth16VK(vkb); err != nil {
			return nil, err
		}
		vkCache[*it.CanonicalVK] = vk
	}
	pb, err := verify.DecodeHex(*it.Proof, "proof")
	if err != nil {
		return nil, err
	}
	p, err := verify.ParseCanonicalGroth16Proof(pb, vk)
	if err != nil {
		return nil, err
	}
	pub, err := verify.ParsePublicHex(it.PublicInputs, "public_inputs")
	if err != nil {
		return nil, err
	}
	if len(pub) != vk.NPublic() {
		return nil, &verify.Error{Code: verify.CodePublicInputCount, Field: "public_inputs", Message: fmt.Sprintf("vk expects %d public inputs, got %d", vk.NPublic(), len(pub))}
	}
	return &verify.Groth16Item{VK: vk, Proof: p, Public: pub}, nil
}

func opPlonkNormalize(r *procproto.Request) (any, error) {
	var req normalizeReq
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	var n *verify.PlonkNormalized
	switch req.Format {
	case "gnark":
		vkb, pb, err := gnarkBlobs(&req)
		if err != nil {
			return nil, err
		}
		pub, err := gnarkPublic(&req)
		if err != nil {
			return nil, err
		}
		if n, err = verify.NormalizeGnarkPlonk(vkb, pb, pub); err != nil {
			return nil, err
		}
	case "snarkjs":
		if len(req.VK) == 0 {
			return nil, &verify.Error{Code: verify.CodeMalformed, Field: "vk", Message: "missing (verification_key.json object)"}
		}
		if len(req.Proof) == 0 {
			return nil, &verify.Error{Code: verify.CodeMalformed, Field: "proof", Message: "missing (proof.json object)"}
		}
		var pub []fr.Element
		var err error
		switch {
		case len(req.Public) > 0 && req.PublicHex != nil:
			return nil, &verify.Error{Code: verify.CodeMalformed, Field: "public", Message: "give either public or public_hex, not both"}
		case len(req.Public) > 0:
			pub, err = verify.JSONPublic(req.Public, "public")
		case req.PublicHex != nil:
			pub, err = verify.ParsePublicHex(req.PublicHex, "public")
		default:
			err = &verify.Error{Code: verify.CodeMalformed, Field: "public", Message: "missing public (public.json list of decimal strings)"}
		}
		if err != nil {
			return nil, err
		}
		if n, err = verify.NormalizeSnarkjsPlonk(req.VK, req.Proof, pub); err != nil {
			return nil, err
		}
	default:
		return nil, &verify.Error{Code: verify.CodeUnsupportedFormat, Field: "format", Message: fmt.Sprintf("plonk.normalize supports formats \"gnark\" and \"snarkjs\", got %q", req.Format)}
	}
	out := map[string]any{
		"canonical_vk":  hex0x(n.CanonicalVK),
		"proof":         hex0x(n.Proof),
		"public_inputs": publicHexList(n.Public),
		"n_public":      n.NPublic,
		"commitments":   n.Commitments,
	}
	if n.Transcript != "" {
		out["transcript"] = n.Transcript
	}
	return out, nil
}

type parseVKReq struct {
	procproto.Envelope
	Format string          `json:"format"`
	VK     json.RawMessage `json:"vk"`
}

// vkResult is the shared result of the parse_vk ops.
func vkResult(canonical []byte, nPublic, commitments int) map[string]any {
	return map[string]any{"canonical_vk": hex0x(canonical), "n_public": nPublic, "commitments": commitments}
}

func parseVKInput(r *procproto.Request) (*parseVKReq, error) {
	var req parseVKReq
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	if len(req.VK) == 0 || string(req.VK) == "null" {
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: "vk", Message: "missing"}
	}
	return &req, nil
}

// groth16.parse_vk: decode and validate a vk alone (gnark binary or snarkjs JSON).
func opGroth16ParseVK(r *procproto.Request) (any, error) {
	req, err := parseVKInput(r)
	if err != nil {
		return nil, err
	}
	var vk *verify.Groth16VK
	switch req.Format {
	case "gnark":
		s, err := rawString(req.VK, "vk")
		if err != nil {
			return nil, err
		}
		b, err := b64(s, "vk")
		if err != nil {
			return nil, err
		}
		if vk, err = verify.ParseGnarkGroth16VK(b); err != nil {
			return nil, err
		}
	case "snarkjs":
		if vk, err = verify.ParseSnarkjsGroth16VK(req.VK); err != nil {
			return nil, err
		}
	default:
		return nil, &verify.Error{Code: verify.CodeUnsupportedFormat, Field: "format", Message: fmt.Sprintf("groth16.parse_vk supports \"gnark\" and \"snarkjs\", got %q", req.Format)}
	}
	return vkResult(vk.Canonical(), vk.NPublic(), vk.NCommitments()), nil
}

// plonk.parse_vk: decode and validate a vk alone (gnark binary or snarkjs JSON).
func opPlonkParseVK(r *procproto.Request) (any, error) {
	req, err := parseVKInput(r)
	if err != nil {
		return nil, err
	}
	switch req.Format {
	case "gnark":
		s, err := rawString(req.VK, "vk")
		if err != nil {
			return nil, err
		}
		b, err := b64(s, "vk")
		if err != nil {
			return nil, err
		}
		vk, err := verify.ParseGnarkPlonkVK(b)
		if err != nil {
			return nil, err
		}
		return vkResult(vk.Canonical(), int(vk.NbPublic), len(vk.Qcp)), nil
	case "snarkjs":
		vk, err := verify.ParseSnarkjsPlonkVK(req.VK)
		if err != nil {
			return nil, err
		}
		return vkResult(vk.Canonical(), int(vk.NPublic), 0), nil
	default:
		return nil, &verify.Error{Code: verify.CodeUnsupportedFormat, Field: "format", Message: fmt.Sprintf("plonk.parse_vk supports \"gnark\" and \"snarkjs\", got %q", req.Format)}
	}
}
