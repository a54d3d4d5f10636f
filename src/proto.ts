import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * proto-loader options for every .proto of the project. scripts/gen-proto.sh passes the same
 * choices to proto-loader-gen-types (--longs=Number --enums=String --defaults; camelCase names;
 * bytes as Buffer), so the generated types describe exactly what this loader produces.
 */
export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: false,
};

/** proto/<name>, from src/ (sources, vitest) or build/src/ (tsc output). */
export function protoPath(name: string): string {
  for (const rel of [`../proto/${name}`, `../../proto/${name}`]) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(`raftkv: proto/${name} not found (looked relative to ${import.meta.url})`);
}

const loaded = new Map<string, grpc.GrpcObject>();

/** The loaded definitions of proto/<name> (cached). */
export function loadProto(name: string): grpc.GrpcObject {
  let pkg = loaded.get(name);
  if (!pkg) {
    pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath(name), PROTO_OPTIONS));
    loaded.set(name, pkg);
  }
  return pkg;
}
