// Package buildinfo reports the sheaf-gnark version and the gnark libraries it links.
package buildinfo

import (
	"runtime/debug"

	"github.com/sheaf-zk/sheaf/gnark/procproto"
)

// Version is the sheaf-gnark binary version.
const Version = "0.1.0"

// Protocol is the version of the process protocol both serving commands speak (procproto).
const Protocol = procproto.Version

// Info describes the binary and the gnark libraries it was built with.
type Info struct {
	Sheaf       string `json:"sheaf_gnark"`
	Protocol    int    `json:"protocol"`
	Gnark       string `json:"gnark"`
	GnarkCrypto string `json:"gnark_crypto"`
	Go          string `json:"go"`
}

// Get reads the module versions from debug.ReadBuildInfo.
func Get() Info {
	v := Info{Sheaf: Version, Protocol: Protocol, Gnark: "unknown", GnarkCrypto: "unknown", Go: "unknown"}
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
