package verify

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	bn "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
)

const fixtureDir = "../../tests/fixtures/gnark"

func readFixture(t *testing.T, name, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name, file))
	if err != nil {
		t.Fatalf("fixture %s/%s: %v (run `sheaf-gnark fixtures --out tests/fixtures/gnark`)", name, file, err)
	}
	return b
}

func readJSON(t *testing.T, name, file string, v any) {
	t.Helper()
	if err := json.Unmarshal(readFixture(t, name, file), v); err != nil {
		t.Fatalf("%s/%s: %v", name, file, err)
	}
}

func wantCode(t *testing.T, err error, code, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected %s at %q, got success", code, field)
	}
	e := AsError(err)
	if e.Code != code || (field != "" && e.Field != field) {
		t.Fatalf("expected %s at %q, got %s at %q (%s)", code, field, e.Code, e.Field, e.Message)
	}
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

// twistPointOutsideSubgroup finds a point on the BN254 twist that is not in G2.
func twistPointOutsideSubgroup(t *testing.T) bn.G2Affine {
	t.Helper()
	for i := uint64(1); i < 1000; i++ {
		var p bn.G2Affine
		p.X.A0.SetUint64(i)
		p.X.A1.SetUint64(7)
		var y2 bn.E2
		y2.Square(&p.X).Mul(&y2, &p.X).Add(&y2, &bTwist)
		if y2.Legendre() != 1 {
			continue
		}
		p.Y.Sqrt(&y2)
		if p.IsOnCurve() && !p.IsInSubGroup() {
			return p
		}
	}
	t.Fatal("no twist point found")
	return bn.G2Affine{}
}

func fpModulusBig() string { return fp.Modulus().String() }

func fpModulusBytes() []byte {
	b := fp.Modulus().Bytes()
	out := make([]byte, 32)
	copy(out[32-len(b):], b)
	return out
}
