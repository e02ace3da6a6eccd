module github.com/sheaf-zk/sheaf/gnark

go 1.26.8

require (
	github.com/blang/semver/v4 v4.0.0 // indirect
	github.com/consensys/gnark v0.16.1 // indirect
	github.com/consensys/gnark-crypto v0.21.0 // indirect
)
