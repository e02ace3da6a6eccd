package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/sheaf-zk/sheaf/gnark/solidity"
)

func runExportSolidity(args []string) error {
	fs := flag.NewFlagSet("export-solidity", flag.ContinueOnError)
	scheme := fs.String("scheme", "", "groth16 | plonk")
	vkPath := fs.String("vk", "", "gnark verifying key file (WriteTo or WriteRawTo)")
	out := fs.String("out", "", "output .sol file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scheme == "" || *vkPath == "" || *out == "" {
		return fmt.Errorf("--scheme, --vk and --out are required")
	}
	vk, err := os.ReadFile(*vkPath)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := solidity.Export(*scheme, vk, &buf); err != nil {
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644)
}
