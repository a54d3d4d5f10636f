#!/bin/sh
# Regenerates the TypeScript types of proto/raft.proto into src/raft/transport/generated/ and of
# proto/kv.proto into src/generated/ (outside raft/ and server/: the SDK uses them too; they are
# types only, so nothing of them is loaded at run time).
# The flags must match the proto-loader options in src/proto.ts (PROTO_OPTIONS):
# camelCase field names, 64-bit integers as JS numbers, enums as strings, defaults filled in,
# bytes as Buffer (proto-loader-gen-types' default).
set -eu
cd "$(dirname "$0")/.."
gen() {
  out=$1
  proto=$2
  rm -rf "$out"
  npx --no-install proto-loader-gen-types \
    --longs=Number --enums=String --defaults \
    --grpcLib=@grpc/grpc-js \
    --importFileExtension=.js \
    --includeComments \
    -I proto -O "$out" \
    "$proto"
}
gen src/raft/transport/generated raft.proto
gen src/generated kv.proto
