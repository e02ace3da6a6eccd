// Package sidecar is the verifier process, `sheaf-gnark serve`: ops that decode, strictly
// validate, normalize and verify Groth16 and PLONK proofs, served over the process protocol
// (procproto; docs/sidecar.md).
package sidecar

import (
	"io"

	"github.com/sheaf-zk/sheaf/gnark/procproto"
)

// DefaultMaxLine is the default bound on one request line (8 MiB).
const DefaultMaxLine = procproto.DefaultMaxLine

// Options configures the verifier process.
type Options struct {
	MaxLine int // bytes per request line, excluding the newline
	Workers int // concurrent request handlers (default: GOMAXPROCS); answers may be out of order
}

// Server is the verifier's op table on the shared loop.
func Server(opt Options) *procproto.Server {
	return &procproto.Server{
		Process: "verifier",
		MaxLine: opt.MaxLine,
		Workers: opt.Workers,
		Ops: map[string]procproto.Handler{
			"version":              opVersion,
			"groth16.normalize":    opGroth16Normalize,
			"groth16.verify_batch": opGroth16VerifyBatch,
			"plonk.normalize":      opPlonkNormalize,
			"groth16.parse_vk":     opGroth16ParseVK,
			"plonk.parse_vk":       opPlonkParseVK,
		},
	}
}

// Serve answers requests from in until EOF (see procproto.Server.Serve).
func Serve(in io.Reader, out io.Writer, opt Options) error { return Server(opt).Serve(in, out) }
