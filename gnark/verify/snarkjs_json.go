package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"

	bn "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// Strict readers for snarkjs JSON: field elements are decimal strings only (no JSON numbers,
// no hex, no signs or leading zeros), points are affine [x, y, "1"] / [[x0,x1],[y0,y1],["1","0"]]
// with the projective zero ["0","1","0"] as the only infinity encoding.

func jsonObject(raw json.RawMessage, field string, required, optional []string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, errf(CodeMalformed, field, "expected a JSON object")
	}
	allowed := map[string]bool{}
	for _, k := range append(append([]string{}, required...), optional...) {
		allowed[k] = true
	}
	var extra []string
	for k := range m {
		if !allowed[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, errf(CodeMalformed, field+"."+extra[0], "unexpected field")
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return nil, errf(CodeMalformed, field+"."+k, "missing field")
		}
	}
	return m, nil
}

func jsonString(raw json.RawMessage, field string) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", errf(CodeMalformed, field, "expected a JSON string")
	}
	return s, nil
}

func jsonArray(raw json.RawMessage, field string, n int) ([]json.RawMessage, error) {
	var a []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &a) != nil {
		return nil, errf(CodeMalformed, field, "expected a JSON array")
	}
	if n >= 0 && len(a) != n {
		return nil, errf(CodeMalformed, field, "expected %d elements, got %d", n, len(a))
	}
	return a, nil
}

// jsonUint reads a small non-negative JSON integer (snarkjs' nPublic, power).
func jsonUint(raw json.RawMessage, field string, max uint64) (uint64, error) {
	s := strings.TrimSpace(string(raw))
	if !isDecimal(s) {
		return 0, errf(CodeMalformed, field, "expected a non-negative JSON integer")
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Cmp(new(big.Int).SetUint64(max)) > 0 {
		return 0, errf(CodeMalformed, field, "integer out of range [0, %d]", max)
	}
	return v.Uint64(), nil
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 78 {
		return false
	}
	if s[0] == '0' && len(s) > 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// jsonDecimal reads a decimal-string integer.
func jsonDecimal(raw json.RawMessage, field string) (*big.Int, error) {
	s, err := jsonString(raw, field)
	if err != nil {
		return nil, errf(CodeMalformed, field, "expected a decimal string")
	}
	if !isDecimal(s) {
		return nil, errf(CodeMalformed, field, "expected a canonical decimal string (digits only, no leading zeros)")
	}
	v, _ := new(big.Int).SetString(s, 10)
	return v, nil
}

// JSONFr reads a scalar (decimal string < r).
func JSONFr(raw json.RawMessage, field string) (fr.Element, error) {
	v, err := jsonDecimal(raw, field)
	if err != nil {
		return fr.Element{}, err
	}
	return FrFromBig(v, field)
}

func jsonFp(raw json.RawMessage, field string) (fp.Element, error) {
	var e fp.Element
	v, err := jsonDecimal(raw, field)
	if err != nil {
		return e, err
	}
	if v.Cmp(fp.Modulus()) >= 0 {
		return e, errf(CodeNonCanonicalScalar, field, "coordinate is not a canonical base-field element (>= p)")
	}
	e.SetBigInt(v)
	return e, nil
}

func rawEq(raw json.RawMessage, s string) bool {
	var c bytes.Buffer
	if json.Compact(&c, raw) != nil {
		return false
	}
	return c.String() == s
}

// JSONG1 reads a snarkjs G1 point.
func JSONG1(raw json.RawMessage, field string, inf infPolicy) (bn.G1Affine, error) {
	var p bn.G1Affine
	a, err := jsonArray(raw, field, 3)
	if err != nil {
		return p, err
	}
	z, err := jsonDecimal(a[2], field)
	if err != nil {
		return p, err
	}
	if z.Sign() == 0 {
		if !rawEq(raw, `["0","1","0"]`) {
			return p, errf(CodeInvalidPoint, field, `the point at infinity must be encoded as ["0","1","0"]`)
		}
		return p, checkG1(&p, inf, field)
	}
	if z.Cmp(big.NewInt(1)) != 0 {
		return p, errf(CodeMalformed, field, `points must be affine (z = "1")`)
	}
	if p.X, err = jsonFp(a[0], field); err != nil {
		return p, err
	}
	if p.Y, err = jsonFp(a[1], field); err != nil {
		return p, err
	}
	if p.IsInfinity() {
		return p, errf(CodeInvalidPoint, field, "(0, 0) is not on the curve")
	}
	return p, checkG1(&p, inf, field)
}

// JSONG2 reads a snarkjs G2 point ([[x.c0,x.c1],[y.c0,y.c1],["1","0"]], c0 first).
func JSONG2(raw json.RawMessage, field string, inf infPolicy) (bn.G2Affine, error) {
	var p bn.G2Affine
	a, err := jsonArray(raw, field, 3)
	if err != nil {
		return p, err
	}
	var c [3][2]json.RawMessage
	for i := range a {
		pair, err := jsonArray(a[i], field, 2)
		if err != nil {
			return p, err
		}
		c[i][0], c[i][1] = pair[0], pair[1]
	}
	z0, err := jsonDecimal(c[2][0], field)
	if err != nil {
		return p, err
	}
	z1, err := jsonDecimal(c[2][1], field)
	if err != nil {
		return p, err
	}
	if z0.Sign() == 0 && z1.Sign() == 0 {
		if !rawEq(raw, `[["0","0"],["1","0"],["0","0"]]`) {
			return p, errf(CodeInvalidPoint, field, `the point at infinity must be encoded as [["0","0"],["1","0"],["0","0"]]`)
		}
		return p, checkG2(&p, inf, field)
	}
	if z0.Cmp(big.NewInt(1)) != 0 || z1.Sign() != 0 {
		return p, errf(CodeMalformed, field, `points must be affine (z = ["1","0"])`)
	}
	for _, t := range []struct {
		raw json.RawMessage
		dst *fp.Element
	}{{c[0][0], &p.X.A0}, {c[0][1], &p.X.A1}, {c[1][0], &p.Y.A0}, {c[1][1], &p.Y.A1}} {
		if *t.dst, err = jsonFp(t.raw, field); err != nil {
			return p, err
		}
	}
	if p.IsInfinity() {
		return p, errf(CodeInvalidPoint, field, "(0, 0) is not on the twist")
	}
	return p, checkG2(&p, inf, field)
}

// JSONPublic reads a snarkjs public.json list of decimal strings.
func JSONPublic(raw json.RawMessage, field string) ([]fr.Element, error) {
	a, err := jsonArray(raw, field, -1)
	if err != nil {
		return nil, err
	}
	out := make([]fr.Element, len(a))
	for i := range a {
		if out[i], err = JSONFr(a[i], fmt.Sprintf("%s[%d]", field, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func expectString(m map[string]json.RawMessage, key, want, field string) error {
	s, err := jsonString(m[key], field+"."+key)
	if err != nil {
		return err
	}
	if s != want {
		return errf(CodeUnsupportedFormat, field+"."+key, "expected %q, got %q", want, s)
	}
	return nil
}
