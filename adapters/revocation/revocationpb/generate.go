// Package revocationpb is the generated Go code of the AGS revocation plugin
// contract (revocation.proto). The generated files are committed; see the
// .proto for how to regenerate them.
package revocationpb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative revocation.proto
