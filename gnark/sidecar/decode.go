package sidecar

import (
	"encoding/base64"

	"github.com/sheaf-zk/sheaf/gnark/verify"
)

func b64(s *string, field string) ([]byte, error) {
	if s == nil {
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: field, Message: "missing (base64 string required)"}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(*s)
	if err != nil {
		return nil, &verify.Error{Code: verify.CodeMalformed, Field: field, Message: "not standard padded base64: " + err.Error()}
	}
	return b, nil
}

func hex0x(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2+2*len(b))
	out[0], out[1] = '0', 'x'
	for i, c := range b {
		out[2+2*i] = digits[c>>4]
		out[3+2*i] = digits[c&15]
	}
	return string(out)
}
