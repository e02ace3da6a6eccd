package circuits

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/test"
)

func TestMulChainAssignment(t *testing.T) {
	for _, n := range []int{1, 3, 8} {
		if err := test.IsSolved(NewMulChain(n), MulChainAssignment(n, 7), ecc.BN254.ScalarField()); err != nil {
			t.Fatalf("n=%d: valid assignment not solved: %v", n, err)
		}
		bad := MulChainAssignment(n, 7)
		bad.X[n-1] = 1
		if test.IsSolved(NewMulChain(n), bad, ecc.BN254.ScalarField()) == nil {
			t.Fatalf("n=%d: wrong public input accepted", n)
		}
	}
}

func TestCommittedAssignment(t *testing.T) {
	if err := test.IsSolved(&Committed{}, CommittedAssignment(7, 11), ecc.BN254.ScalarField()); err != nil {
		t.Fatal(err)
	}
	bad := CommittedAssignment(7, 11)
	bad.Y = 5
	if test.IsSolved(&Committed{}, bad, ecc.BN254.ScalarField()) == nil {
		t.Fatal("wrong Y accepted")
	}
}
