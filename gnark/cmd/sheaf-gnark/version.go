package main

import (
	"runtime/debug"
)

// Version is the sheaf-gnark binary version (bumped by hand on protocol changes).
const Version = "0.1.0"

// VersionInfo describes the binary and the gnark libraries it was built with.
type VersionInfo struct {
	Sheaf       string `json:"sheaf_gnark"`
	Gnark       string `json:"gnark"`
	GnarkCrypto string `json:"gnark_crypto"`
	Go          string `json:"go"`
}

func versionInfo() VersionInfo {
	v := VersionInfo{Sheaf: Version, Gnark: "unknown", GnarkCrypto: "unknown", Go: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Go = bi.GoVersion
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		switch d.Path {
		case "github.com/consensys/gnark":
			v.Gnark = m.Version
		case "github.com/consensys/gnark-crypto":
			v.GnarkCrypto = m.Version
		}
	}
	return v
}
