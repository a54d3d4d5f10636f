#!/bin/sh
# Regenerates the TypeScript types of proto/raft.proto into src/raft/transport/generated/.
# The flags must match the proto-loader options in src/raft/transport/grpc.ts (PROTO_OPTIONS):
# camelCase field names, 64-bit integers as JS numbers, enums as strings, defaults filled in,
# bytes as Buffer (proto-loader-gen-types' default).
set -eu
cd "$(dirname "$0")/.."
out=src/raft/transport/generated
rm -rf "$out"
npx --no-install proto-loader-gen-types \
  --longs=Number --enums=String --defaults \
  --grpcLib=@grpc/grpc-js \
  --importFileExtension=.js \
  --includeComments \
  -I proto -O "$out" \
  raft.proto
