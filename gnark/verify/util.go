package verify

import (
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"strings"

	"github.com/consensys/gnark-crypto/ecc"
)

// randomCoefficient draws a uniform non-zero 128-bit batching coefficient from crypto/rand.
func randomCoefficient() (*big.Int, error) {
	for {
		v, err := rand.Int(rand.Reader, coeffBound)
		if err != nil {
			return nil, err
		}
		if v.Sign() != 0 {
			return v, nil
		}
	}
}

func decodeHex(s, field string) ([]byte, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(t)%2 != 0 {
		return nil, errf(CodeMalformed, field, "hex string has odd length")
	}
	b, err := hex.DecodeString(t)
	if err != nil {
		return nil, errf(CodeMalformed, field, "not a hex string: %v", err)
	}
	return b, nil
}

// DecodeHex decodes 0x-optional hex, naming field on error.
func DecodeHex(s, field string) ([]byte, error) { return decodeHex(s, field) }

var ecc1Task = ecc.MultiExpConfig{NbTasks: 1}
