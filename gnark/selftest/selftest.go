// Package selftest runs an end-to-end Groth16 round trip with gnark on a tiny circuit.
package selftest

import (
	"errors"
	"fmt"
	"io"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/sheaf-zk/sheaf/gnark/circuits"
)

// Run compiles a 2-public-input circuit, runs a (fresh, throwaway) setup, proves, verifies,
// and checks that a tampered public input is rejected. Progress goes to log.
func Run(log io.Writer) error {
	const n = 2
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, circuits.NewMulChain(n))
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	fmt.Fprintf(log, "compiled: %d constraints\n", ccs.GetNbConstraints())
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	w, err := frontend.NewWitness(circuits.MulChainAssignment(n, 5), ecc.BN254.ScalarField())
	if err != nil {
		return fmt.Errorf("witness: %w", err)
	}
	proof, err := groth16.Prove(ccs, pk, w)
	if err != nil {
		return fmt.Errorf("prove: %w", err)
	}
	pub, err := w.Public()
	if err != nil {
		return fmt.Errorf("public witness: %w", err)
	}
	if err := groth16.Verify(proof, vk, pub); err != nil {
		return fmt.Errorf("verify valid proof: %w", err)
	}
	fmt.Fprintln(log, "valid proof: accepted")

	// tamper: the same proof against a different public input must fail
	bad := circuits.MulChainAssignment(n, 5)
	bad.X[1] = 12345
	bw, err := frontend.NewWitness(bad, ecc.BN254.ScalarField(), frontend.PublicOnly())
	if err != nil {
		return fmt.Errorf("tampered witness: %w", err)
	}
	if err := groth16.Verify(proof, vk, bw); err == nil {
		return errors.New("tampered public input was ACCEPTED")
	}
	fmt.Fprintln(log, "tampered public input: rejected")
	return nil
}
