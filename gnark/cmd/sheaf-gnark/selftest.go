package main

import (
	"fmt"
	"os"

	"github.com/sheaf-zk/sheaf/gnark/selftest"
)

func runSelftest(args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("selftest takes no arguments")
	}
	if err := selftest.Run(os.Stderr); err != nil {
		return err
	}
	fmt.Println("selftest: ok")
	return nil
}
