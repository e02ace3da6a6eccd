package main

import (
	"flag"
	"os"

	"github.com/sheaf-zk/sheaf/gnark/sidecar"
)

func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	maxLine := fs.Int("max-line", sidecar.DefaultMaxLine, "maximum request line size in bytes (larger lines get TOO_LARGE)")
	workers := fs.Int("workers", 0, "concurrent request handlers (0 = GOMAXPROCS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return sidecar.Serve(os.Stdin, os.Stdout, sidecar.Options{MaxLine: *maxLine, Workers: *workers})
}
