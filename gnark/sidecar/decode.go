package sidecar

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sheaf-zk/sheaf/gnark/verify"
)

// decodeStrict unmarshals a request into v, rejecting unknown fields and wrong JSON types
// with MALFORMED naming the field.
func decodeStrict(line []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &verify.Error{Code: verify.CodeMalformed, Field: te.Field, Message: fmt.Sprintf("expected JSON %s, got %s", te.Type, te.Value)}
		}
		msg := err.Error()
		field := ""
		if strings.HasPrefix(msg, "json: unknown field ") {
			field = strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		}
		return &verify.Error{Code: verify.CodeMalformed, Field: field, Message: msg}
	}
	return nil
}

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
