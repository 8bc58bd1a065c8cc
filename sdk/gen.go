package sdk

// The generated wire code in internal/notifierpb is committed, so building
// needs neither protoc nor its plugins. To regenerate after editing
// proto/notifier.proto, put protoc (Debian: protobuf-compiler),
// protoc-gen-go and protoc-gen-go-grpc on PATH and run `go generate ./sdk/...`.

//go:generate protoc --proto_path=proto --go_out=internal/notifierpb --go_opt=paths=source_relative --go-grpc_out=internal/notifierpb --go-grpc_opt=paths=source_relative notifier.proto
