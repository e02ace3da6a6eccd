package solidity

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtureDir = "../../tests/fixtures/gnark"

// The exported verifier is deterministic in the vk: it must equal the committed fixture, from
// either vk encoding.
func TestExportMatchesFixtures(t *testing.T) {
	cases := []struct{ name, scheme, sig string }{
		{"groth16_n2", "groth16", "function verifyProof(\n        bytes calldata proof,\n        uint256[2] calldata input"},
		{"groth16_commit_n2", "groth16", "require(proof.length == 384"},
		{"plonk_n3", "plonk", "function Verify(bytes calldata proof, uint256[] calldata public_inputs)"},
	}
	for _, c := range cases {
		want, err := os.ReadFile(filepath.Join(fixtureDir, c.name, "Verifier.sol"))
		if err != nil {
			t.Fatal(err)
		}
		for _, vkf := range []string{"vk.bin", "vk.raw.bin"} {
			vk, err := os.ReadFile(filepath.Join(fixtureDir, c.name, vkf))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := Export(c.scheme, vk, &out); err != nil {
				t.Fatalf("%s/%s: %v", c.name, vkf, err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("%s/%s: exported verifier differs from the fixture", c.name, vkf)
			}
			if !strings.Contains(out.String(), c.sig) {
				t.Fatalf("%s: expected %q in the verifier", c.name, c.sig)
			}
		}
	}
}

func TestExportRejectsBadKeys(t *testing.T) {
	vk, _ := os.ReadFile(filepath.Join(fixtureDir, "groth16_n2", "vk.bin"))
	if err := Export("groth16", vk[:len(vk)-2], &bytes.Buffer{}); err == nil {
		t.Fatal("truncated vk exported")
	}
	if err := Export("plonk", vk, &bytes.Buffer{}); err == nil {
		t.Fatal("groth16 vk exported as plonk")
	}
	if err := Export("halo2", vk, &bytes.Buffer{}); err == nil {
		t.Fatal("unknown scheme accepted")
	}
}
