// Command sheaf-slice is the standalone form of `sheaf-gnark slice ...` (same code, gnark/slice),
// usable before/without the main binary wiring the subcommand.
package main

import (
	"fmt"
	"os"

	"github.com/consensys/gnark/logger"

	"github.com/sheaf-zk/sheaf/gnark/slice"
)

func main() {
	logger.Disable() // gnark logs to stdout, which carries our JSON result
	if err := slice.Run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "sheaf-slice: %v\n", err)
		os.Exit(1)
	}
}
