/**
 * The membership RPCs of proto/kv.proto over plain gRPC, for the end-to-end tests: they exercise
 * the server's side on their own, whatever the SDK does.
 */
import * as grpc from '@grpc/grpc-js';
import { loadKvProto, MD_ERROR, MD_LEADER, type MemberChangeResponse, type MemberListResponse } from '../../src/kv-api.js';
import { sleep } from './cluster.js';

type Method = 'MemberList' | 'MemberAdd' | 'MemberPromote' | 'MemberRemove' | 'LeaderTransfer';

/** A refusal that retrying elsewhere does not change (conf-refused, a bad argument). */
export class Refused extends Error {
  constructor(
    readonly code: grpc.status,
    readonly reason: string,
    details: string,
  ) {
    super(details);
  }
}

/** Calls `method` once at `endpoint`; resolves with the answer or rejects with the gRPC error. */
export function callAt<Res>(endpoint: string, method: Method, request: object, timeoutMs = 3000): Promise<Res> {
  const client = new (loadKvProto().Kv)(endpoint, grpc.credentials.createInsecure());
  const fn = (client as unknown as Record<string, (req: object, opts: grpc.CallOptions, cb: grpc.requestCallback<Res>) => void>)[method]!;
  return new Promise<Res>((resolve, reject) => {
    fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res!)));
  }).finally(() => client.close());
}

/**
 * Calls `method` on the leader among `endpoints`: follows leader hints, and tries again (other
 * endpoints, after a pause) on not-leader, no-leader and unreachable nodes until `timeoutMs`.
 * A refusal with raftkv-error conf-refused, or INVALID_ARGUMENT, rejects with Refused at once.
 */
export async function memberCall<Res>(endpoints: readonly string[], method: Method, request: object, timeoutMs = 15_000): Promise<Res> {
  const deadline = Date.now() + timeoutMs;
  let hint: string | undefined;
  let last = '';
  for (let round = 0; ; round++) {
    for (const ep of hint ? [hint, ...endpoints.filter((e) => e !== hint)] : endpoints) {
      try {
        return await callAt<Res>(ep, method, request, Math.max(500, Math.min(5000, deadline - Date.now())));
      } catch (e) {
        const err = e as grpc.ServiceError;
        const reason = String(err.metadata?.get(MD_ERROR)[0] ?? '');
        if (reason === 'conf-refused' || err.code === grpc.status.INVALID_ARGUMENT) throw new Refused(err.code, reason, err.details);
        last = `${ep}: ${err.details ?? err.message}`;
        const leader = err.metadata?.get(MD_LEADER)[0];
        if (leader !== undefined && String(leader) !== ep) {
          hint = String(leader);
          break;
        }
      }
      if (Date.now() > deadline) throw new Error(`${method} got no answer within ${timeoutMs} ms (last: ${last})`);
    }
    if (Date.now() > deadline) throw new Error(`${method} got no answer within ${timeoutMs} ms (last: ${last})`);
    await sleep(Math.min(200, 20 * (round + 1)));
  }
}

/** The membership changes, on the leader among `endpoints`. */
export const members = {
  list: (endpoint: string) => callAt<MemberListResponse>(endpoint, 'MemberList', {}),
  add: (endpoints: readonly string[], node: { id: number; peerAddr: string; clientAddr: string }, learner: boolean) =>
    memberCall<MemberChangeResponse>(endpoints, 'MemberAdd', { ...node, learner }),
  promote: (endpoints: readonly string[], id: number) => memberCall<MemberChangeResponse>(endpoints, 'MemberPromote', { id }),
  /** Promotes learner `id` once it has caught up: as an operator does, retrying while the leader refuses it as far behind. */
  promoteWhenCaughtUp: async (endpoints: readonly string[], id: number, timeoutMs = 30_000): Promise<MemberChangeResponse> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await memberCall<MemberChangeResponse>(endpoints, 'MemberPromote', { id });
      } catch (e) {
        if (!(e instanceof Refused && /far behind/.test(e.message)) || Date.now() > deadline) throw e;
        await sleep(200);
      }
    }
  },
  remove: (endpoints: readonly string[], id: number, force = false) => memberCall<MemberChangeResponse>(endpoints, 'MemberRemove', { id, force }),
  transfer: (endpoints: readonly string[], id: number) => memberCall<{ leaderId: number; term: number }>(endpoints, 'LeaderTransfer', { id }),
};
