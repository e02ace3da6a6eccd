package sidecar

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtureDir = "../../tests/fixtures/gnark"

func fixtureB64(t *testing.T, name, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name, file))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func line(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// serve runs the loop over input and returns responses keyed by their id (as JSON text). Each
// response is checked to be a procproto envelope and flattened for the assertions: a success's
// result fields, or an error's code/field/message, next to "id" and "ok".
func serve(t *testing.T, input string, opt Options) (map[string]map[string]any, []map[string]any) {
	t.Helper()
	var out bytes.Buffer
	if err := Serve(strings.NewReader(input), &out, opt); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	byID := map[string]map[string]any{}
	var all []map[string]any
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var first struct {
		ID     any            `json:"id"`
		Event  string         `json:"event"`
		Result map[string]any `json:"result"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.ID != nil || first.Event != "ready" ||
		first.Result["protocol"] != float64(2) || first.Result["process"] != "verifier" {
		t.Fatalf("first line must be the ready event, got %q", lines[0])
	}
	for _, l := range lines[1:] {
		var env struct {
			ID     any             `json:"id"`
			OK     bool            `json:"ok"`
			Result map[string]any  `json:"result"`
			Error  *map[string]any `json:"error"`
		}
		d := json.NewDecoder(strings.NewReader(l))
		d.DisallowUnknownFields()
		if err := d.Decode(&env); err != nil || env.OK == (env.Error != nil) {
			t.Fatalf("response is not an envelope: %q (%v)", l, err)
		}
		m := map[string]any{"id": env.ID, "ok": env.OK}
		for k, v := range env.Result {
			m[k] = v
		}
		if env.Error != nil {
			for k, v := range *env.Error {
				m[k] = v
			}
		}
		idb, _ := json.Marshal(m["id"])
		byID[string(idb)] = m
		all = append(all, m)
	}
	return byID, all
}

func wantErr(t *testing.T, r map[string]any, code, field string) {
	t.Helper()
	if r == nil {
		t.Fatalf("missing response (want %s)", code)
	}
	if r["ok"] != false || r["code"] != code || (field != "" && r["field"] != field) {
		t.Fatalf("want %s at %q, got %v", code, field, r)
	}
}

func TestMalformedLinesDoNotKillTheLoop(t *testing.T) {
	in := "not json\n" +
		"[1,2]\n" +
		`{"op":"ping"}` + "\n" +
		`{"id":{"x":1},"op":"ping"}` + "\n" +
		`{"id":7,"op":"nope"}` + "\n" +
		`{"id":8,"op":"groth16.normalize","format":"gnark","vk":12}` + "\n" +
		`{"id":9,"op":"groth16.normalize","format":"gnark","vk":"@@@","proof":"","public_hex":[]}` + "\n" +
		`{"id":10,"op":"groth16.normalize","format":"ark","vk":"","proof":""}` + "\n" +
		`{"id":11,"op":"groth16.normalize","format":"gnark","vk":"","proof":"","public_hex":[],"bogus":1}` + "\n" +
		strings.Repeat("x", 5000) + "\n" +
		"\n" +
		`{"id":"last","op":"ping"}` + "\n"
	byID, all := serve(t, in, Options{MaxLine: 4096, Workers: 2})
	if len(all) != 11 {
		t.Fatalf("want 11 responses, got %d: %v", len(all), all)
	}
	wantErr(t, byID["7"], "MALFORMED", "op")
	wantErr(t, byID["8"], "MALFORMED", "vk")
	wantErr(t, byID["9"], "MALFORMED", "vk")
	wantErr(t, byID["10"], "UNSUPPORTED_FORMAT", "format")
	wantErr(t, byID["11"], "MALFORMED", "bogus")
	if byID[`"last"`]["ok"] != true || byID[`"last"`]["pong"] != true {
		t.Fatalf("ping after garbage: %v", byID[`"last"`])
	}
	tooLarge, malformed := 0, 0
	for _, r := range all {
		switch r["code"] {
		case "TOO_LARGE":
			tooLarge++
		case "MALFORMED":
			malformed++
		}
	}
	if tooLarge != 1 || malformed != 8 {
		t.Fatalf("TOO_LARGE=%d MALFORMED=%d: %v", tooLarge, malformed, all)
	}
}

func TestNoTrailingNewlineAndCRLF(t *testing.T) {
	byID, _ := serve(t, `{"id":1,"op":"ping"}`+"\r\n"+`{"id":2,"op":"ping"}`, Options{})
	if byID["1"]["ok"] != true || byID["2"]["ok"] != true {
		t.Fatal(byID)
	}
}

func TestGroth16NormalizeThenBatch(t *testing.T) {
	var in strings.Builder
	names := []string{"groth16_n1", "groth16_n3", "groth16_n8", "groth16_commit_n2"}
	for i, n := range names {
		in.WriteString(line(t, map[string]any{"id": i, "op": "groth16.normalize", "format": "gnark",
			"vk": fixtureB64(t, n, "vk.raw.bin"), "proof": fixtureB64(t, n, "proof.bin"), "public": fixtureB64(t, n, "public.bin")}))
	}
	byID, _ := serve(t, in.String(), Options{Workers: 2})
	var items []map[string]any
	for i, n := range names {
		r := byID[string(rune('0'+i))]
		if r["ok"] != true {
			t.Fatalf("%s: %v", n, r)
		}
		var cd struct {
			Proof string `json:"proof"`
		}
		b, _ := os.ReadFile(filepath.Join(fixtureDir, n, "calldata.json"))
		_ = json.Unmarshal(b, &cd)
		if r["proof"] != cd.Proof {
			t.Fatalf("%s: proof is not gnark's MarshalSolidity", n)
		}
		items = append(items, map[string]any{"canonical_vk": r["canonical_vk"], "proof": r["proof"], "public_inputs": r["public_inputs"]})
	}
	good := line(t, map[string]any{"id": "good", "op": "groth16.verify_batch", "items": items})
	// one tampered public input, one wrong count, one non-canonical scalar among good items
	bad := make([]map[string]any, 0, 7)
	bad = append(bad, items...)
	t1 := map[string]any{}
	for k, v := range items[1] {
		t1[k] = v
	}
	pubs := append([]any{}, items[1]["public_inputs"].([]any)...)
	pubs[0] = "0x0000000000000000000000000000000000000000000000000000000000000005"
	t1["public_inputs"] = pubs
	t2 := map[string]any{"canonical_vk": items[0]["canonical_vk"], "proof": items[0]["proof"], "public_inputs": []string{}}
	t3 := map[string]any{"canonical_vk": items[0]["canonical_vk"], "proof": items[0]["proof"],
		"public_inputs": []string{"0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001"}}
	bad = append(bad, t1, t2, t3)
	badLine := line(t, map[string]any{"id": "bad", "op": "groth16.verify_batch", "items": bad})
	byID, _ = serve(t, good+badLine, Options{Workers: 2})
	for i, r := range byID[`"good"`]["results"].([]any) {
		if r.(map[string]any)["ok"] != true {
			t.Fatalf("good item %d: %v", i, r)
		}
	}
	res := byID[`"bad"`]["results"].([]any)
	if len(res) != 7 {
		t.Fatalf("results: %v", res)
	}
	for i := 0; i < 4; i++ {
		if res[i].(map[string]any)["ok"] != true {
			t.Fatalf("item %d should pass: %v", i, res[i])
		}
	}
	wantErr(t, res[4].(map[string]any), "VERIFICATION_FAILED", "")
	wantErr(t, res[5].(map[string]any), "PUBLIC_INPUT_COUNT", "public_inputs")
	wantErr(t, res[6].(map[string]any), "NON_CANONICAL_SCALAR", "public_inputs[0]")
}

func readRaw(t *testing.T, name, file string) json.RawMessage {
	b, err := os.ReadFile(filepath.Join(fixtureDir, name, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPlonkNormalize(t *testing.T) {
	var in strings.Builder
	for i, n := range []string{"plonk_n1", "plonk_n3"} {
		in.WriteString(line(t, map[string]any{"id": i, "op": "plonk.normalize", "format": "gnark",
			"vk": fixtureB64(t, n, "vk.bin"), "proof": fixtureB64(t, n, "proof.raw.bin"), "public": fixtureB64(t, n, "public.bin")}))
	}
	sj := func(id string, pub any) string {
		return line(t, map[string]any{"id": id, "op": "plonk.normalize", "format": "snarkjs",
			"vk": readRaw(t, "snarkjs_plonk", "plonk_vk.json"), "proof": readRaw(t, "snarkjs_plonk", "plonk_proof.json"), "public": pub})
	}
	in.WriteString(sj("sj", readRaw(t, "snarkjs_plonk", "public.json")))
	in.WriteString(sj("sj-bad", []string{"235", "7"}))
	in.WriteString(sj("sj-num", []any{234, "7"}))
	byID, _ := serve(t, in.String(), Options{Workers: 2})
	for _, id := range []string{"0", "1", `"sj"`} {
		if byID[id]["ok"] != true {
			t.Fatalf("%s: %v", id, byID[id])
		}
	}
	if byID["1"]["n_public"] != float64(3) || byID[`"sj"`]["n_public"] != float64(2) {
		t.Fatal("n_public")
	}
	if !strings.HasPrefix(byID["0"]["canonical_vk"].(string), "0x01") || !strings.HasPrefix(byID[`"sj"`]["canonical_vk"].(string), "0x02") {
		t.Fatal("producer tags")
	}
	pubs := byID[`"sj"`]["public_inputs"].([]any)
	if pubs[0] != "0x00000000000000000000000000000000000000000000000000000000000000ea" {
		t.Fatalf("public_inputs: %v", pubs)
	}
	wantErr(t, byID[`"sj-bad"`], "VERIFICATION_FAILED", "proof")
	wantErr(t, byID[`"sj-num"`], "MALFORMED", "public[0]")
}

// parse_vk gives the same canonical bytes as normalize, for both producers and schemes.
func TestParseVK(t *testing.T) {
	var in strings.Builder
	in.WriteString(line(t, map[string]any{"id": "g", "op": "groth16.parse_vk", "format": "gnark", "vk": fixtureB64(t, "groth16_commit_n2", "vk.bin")}))
	in.WriteString(line(t, map[string]any{"id": "gn", "op": "groth16.normalize", "format": "gnark", "vk": fixtureB64(t, "groth16_commit_n2", "vk.raw.bin"),
		"proof": fixtureB64(t, "groth16_commit_n2", "proof.bin"), "public": fixtureB64(t, "groth16_commit_n2", "public.bin")}))
	in.WriteString(line(t, map[string]any{"id": "s", "op": "groth16.parse_vk", "format": "snarkjs", "vk": readRaw(t, "snarkjs_plonk", "groth16_vk.json")}))
	in.WriteString(line(t, map[string]any{"id": "p", "op": "plonk.parse_vk", "format": "gnark", "vk": fixtureB64(t, "plonk_n3", "vk.raw.bin")}))
	in.WriteString(line(t, map[string]any{"id": "pn", "op": "plonk.normalize", "format": "gnark", "vk": fixtureB64(t, "plonk_n3", "vk.bin"),
		"proof": fixtureB64(t, "plonk_n3", "proof.bin"), "public": fixtureB64(t, "plonk_n3", "public.bin")}))
	in.WriteString(line(t, map[string]any{"id": "ps", "op": "plonk.parse_vk", "format": "snarkjs", "vk": readRaw(t, "snarkjs_plonk", "plonk_vk.json")}))
	in.WriteString(line(t, map[string]any{"id": "bad", "op": "plonk.parse_vk", "format": "gnark", "vk": fixtureB64(t, "groth16_n1", "vk.bin")}))
	in.WriteString(line(t, map[string]any{"id": "nov", "op": "groth16.parse_vk", "format": "gnark"}))
	byID, _ := serve(t, in.String(), Options{Workers: 2})
	for _, id := range []string{`"g"`, `"gn"`, `"s"`, `"p"`, `"pn"`, `"ps"`} {
		if byID[id]["ok"] != true {
			t.Fatalf("%s: %v", id, byID[id])
		}
	}
	if byID[`"g"`]["canonical_vk"] != byID[`"gn"`]["canonical_vk"] || byID[`"g"`]["commitments"] != float64(1) || byID[`"g"`]["n_public"] != float64(2) {
		t.Fatal("groth16.parse_vk != groth16.normalize")
	}
	if byID[`"p"`]["canonical_vk"] != byID[`"pn"`]["canonical_vk"] || byID[`"p"`]["n_public"] != float64(3) {
		t.Fatal("plonk.parse_vk != plonk.normalize")
	}
	if byID[`"s"`]["n_public"] != float64(2) || !strings.HasPrefix(byID[`"ps"`]["canonical_vk"].(string), "0x02") {
		t.Fatal("snarkjs parse_vk")
	}
	if byID[`"bad"`]["ok"] != false {
		t.Fatal("a Groth16 vk parsed as PLONK")
	}
	wantErr(t, byID[`"nov"`], "MALFORMED", "vk")
}
