// Package verify decodes, strictly validates and verifies Groth16 and PLONK proofs on
// BN254: gnark binaries, Sheaf's canonical encodings and snarkjs JSON.
package verify

import "github.com/sheaf-zk/sheaf/gnark/procproto"

// Stable error codes (the sidecar protocol exposes them verbatim).
const (
	CodeMalformed          = procproto.CodeMalformed
	CodeUnsupportedFormat  = "UNSUPPORTED_FORMAT"
	CodeTooLarge           = procproto.CodeTooLarge
	CodeInvalidLength      = "INVALID_LENGTH"
	CodeInvalidPoint       = "INVALID_POINT"
	CodeNotInSubgroup      = "NOT_IN_SUBGROUP"
	CodePointAtInfinity    = "POINT_AT_INFINITY"
	CodeNonCanonicalScalar = "NON_CANONICAL_SCALAR"
	CodePublicInputCount   = "PUBLIC_INPUT_COUNT"
	CodeVerificationFailed = "VERIFICATION_FAILED"
	CodeInternal           = procproto.CodeInternal
)

// Error is a validation or verification failure that names the offending element: the one
// error type of the process protocol (procproto.Error).
type Error = procproto.Error

func errf(code, field, format string, args ...any) *Error {
	return procproto.Errorf(code, field, format, args...)
}

// AsError converts any error into *Error (unknown errors become INTERNAL).
func AsError(err error) *Error { return procproto.AsError(err) }
