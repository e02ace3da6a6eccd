// Package solidity exports gnark's Solidity verifiers for Groth16 and PLONK verifying keys.
package solidity

import (
	"bytes"
	"fmt"
	"io"

	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"

	"github.com/sheaf-zk/sheaf/gnark/verify"
)

// Export writes the Solidity verifier for a gnark vk (raw or compressed encoding). The key is
// validated strictly first. Groth16 verifiers expose verifyProof(bytes proof, uint256[N] input)
// (reverting on failure; proof = 256 bytes, or 384 with one commitment); PLONK verifiers
// expose Verify(bytes proof, uint256[] public_inputs) returns (bool).
func Export(scheme string, vk []byte, w io.Writer) error {
	switch scheme {
	case "groth16":
		if _, err := verify.ParseGnarkGroth16VK(vk); err != nil {
			return err
		}
		k := &groth16bn254.VerifyingKey{}
		if _, err := k.ReadFrom(bytes.NewReader(vk)); err != nil {
			return fmt.Errorf("gnark decode: %w", err)
		}
		return k.ExportSolidity(w)
	case "plonk":
		if _, err := verify.ParseGnarkPlonkVK(vk); err != nil {
			return err
		}
		k := &plonkbn254.VerifyingKey{}
		if _, err := k.ReadFrom(bytes.NewReader(vk)); err != nil {
			return fmt.Errorf("gnark decode: %w", err)
		}
		return k.ExportSolidity(w)
	default:
		return fmt.Errorf("unknown scheme %q (want groth16 or plonk)", scheme)
	}
}
