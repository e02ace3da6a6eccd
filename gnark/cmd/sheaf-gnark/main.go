// Command sheaf-gnark is Sheaf's gnark-side tool: self-test, fixtures, Solidity export,
// benchmarks and the long-lived verification sidecar (`serve`).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/consensys/gnark/logger"

	"github.com/sheaf-zk/sheaf/gnark/buildinfo"
)

const usage = `usage: sheaf-gnark <command> [flags]

commands:
  version          print binary and gnark versions (JSON)
  selftest         Groth16 compile/setup/prove/verify round trip + tamper check
  fixtures --out DIR [--cache DIR]
                   write real gnark Groth16/PLONK fixtures + manifest.json (INSECURE dev keys)
  export-solidity --scheme groth16|plonk --vk FILE --out FILE.sol
                   gnark's Solidity verifier for a gnark vk (validated first)
  bench-verify [--proofs N] [--n-public N] [--fixtures DIR]
                   JSON: native gnark verify vs sheaf batch verifiers (proofs/s)
  serve [--max-line N] [--workers N]
                   verification sidecar: NDJSON requests on stdin, responses on stdout
  slice ...        quantized slice prover (gnark/slice)
  aggregate ...    recursive aggregation (gnark/aggregation)
  tree ...         recursion tree proving units: leaf/merge jobs (gnark/tree)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	// gnark logs to stdout by default, which would corrupt JSON output (and the serve protocol)
	logger.Disable()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "version", "--version", "-v":
		err = json.NewEncoder(os.Stdout).Encode(buildinfo.Get())
	case "selftest":
		err = runSelftest(args)
	case "fixtures":
		err = runFixtures(args)
	case "serve":
		err = runServe(args)
	case "export-solidity":
		err = runExportSolidity(args)
	case "bench-verify":
		err = runBenchVerify(args)
	case "slice":
		err = runSlice(args)
	case "aggregate":
		err = runAggregate(args)
	case "tree":
		err = runTree(args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sheaf-gnark %s: %v\n", cmd, err)
		os.Exit(1)
	}
}
