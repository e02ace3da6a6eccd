// Package verify decodes, strictly validates and verifies Groth16 and PLONK proofs on
// BN254: gnark binaries, Sheaf's canonical encodings and snarkjs JSON.
package verify

import "fmt"

// Stable error codes (the sidecar protocol exposes them verbatim).
const (
	CodeMalformed          = "MALFORMED"
	CodeUnsupportedFormat  = "UNSUPPORTED_FORMAT"
	CodeTooLarge           = "TOO_LARGE"
	CodeInvalidLength      = "INVALID_LENGTH"
	CodeInvalidPoint       = "INVALID_POINT"
	CodeNotInSubgroup      = "NOT_IN_SUBGROUP"
	CodePointAtInfinity    = "POINT_AT_INFINITY"
	CodeNonCanonicalScalar = "NON_CANONICAL_SCALAR"
	CodePublicInputCount   = "PUBLIC_INPUT_COUNT"
	CodeVerificationFailed = "VERIFICATION_FAILED"
	CodeInternal           = "INTERNAL"
)

// Error is a validation or verification failure that names the offending element.
type Error struct {
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Code + ": " + e.Message
	}
	return fmt.Sprintf("%s at %s: %s", e.Code, e.Field, e.Message)
}

func errf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// AsError converts any error into *Error (unknown errors become INTERNAL).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*Error); ok {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
