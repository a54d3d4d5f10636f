/**
 * A node that has bound its client port but does not serve yet answers UNAVAILABLE with the
 * `raftkv-error: starting` reason: the SDK then knows the node answered (it tries it again soon),
 * where an answer without a reason looks like an unreachable node it avoids for a while.
 */
import * as grpc from '@grpc/grpc-js';
import { expect, it } from 'vitest';
import { loadKvProto, MD_ERROR } from '../../src/kv-api.js';
import { grpcNetwork } from '../../src/server/grpc-network.js';
import { freePorts } from '../support/ports.js';

it('a node not serving yet answers UNAVAILABLE "starting", with the reason in raftkv-error', async () => {
  const [port] = await freePorts(1);
  const addr = `127.0.0.1:${port}`;
  const listener = await grpcNetwork().listenClients(addr);
  const Kv = loadKvProto().Kv as unknown as new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & Record<string, Function>;
  const client = new Kv(addr, grpc.credentials.createInsecure());
  try {
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      client['Get']!({ key: Buffer.from('k') }, { deadline: Date.now() + 5000 }, (e: grpc.ServiceError | null) => resolve(e!)),
    );
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toBe('the node is starting');
    expect(err.metadata.get(MD_ERROR)).toEqual(['starting']);
  } finally {
    client.close();
    await listener.close();
  }
});
