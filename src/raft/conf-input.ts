import { confInvalid, MAX_MEMBERS, type ConfState } from './core/conf.js';
import type { NodeId } from './core/types.js';

// A configuration read from outside this process (a peer's snap message, a snapshot file) is
// checked here before the core sees it: the core trusts the configurations it is given.

/** A configuration's fields as some decoder produced them: nothing about them is known yet. */
export interface UncheckedConf {
  readonly voters: unknown;
  readonly votersOutgoing: unknown;
  readonly learners: unknown;
  readonly learnersNext: unknown;
  readonly autoLeave: unknown;
}

export type ConfCheck = { ok: true; conf: ConfState } | { ok: false; reason: string };

/**
 * The configuration in `c`, or why it is refused. Each list holds at most MAX_MEMBERS node ids
 * (safe positive integers) in strictly ascending order: the canonical form the core builds and
 * conf-codec.ts requires, which sameConf() relies on (it compares lists element by element).
 * There is at least one voter (no configuration with members lacks one, and a snapshot always
 * has members), and confInvalid() has nothing against it.
 */
export function checkConf(c: UncheckedConf): ConfCheck {
  const no = (reason: string): ConfCheck => ({ ok: false, reason });
  const lists: NodeId[][] = [];
  for (const [name, ids] of [
    ['voters', c.voters],
    ['votersOutgoing', c.votersOutgoing],
    ['learners', c.learners],
    ['learnersNext', c.learnersNext],
  ] as const) {
    if (!Array.isArray(ids)) return no(`${name} is not a list`);
    // Before looking at the ids: a hostile list may be long.
    if (ids.length > MAX_MEMBERS) return no(`${name} has ${ids.length} ids (the limit is ${MAX_MEMBERS})`);
    let prev = 0;
    for (const id of ids as unknown[]) {
      if (!(typeof id === 'number' && Number.isSafeInteger(id) && id > 0)) return no(`${name} holds ${String(id)}, not a node id`);
      if (id <= prev) return no(`${name} is not in strictly ascending order (${id} after ${prev})`);
      prev = id;
    }
    lists.push([...(ids as NodeId[])]);
  }
  if (typeof c.autoLeave !== 'boolean') return no('autoLeave is not a boolean');
  const conf: ConfState = { voters: lists[0]!, votersOutgoing: lists[1]!, learners: lists[2]!, learnersNext: lists[3]!, autoLeave: c.autoLeave };
  if (conf.voters.length === 0) return no('it has no voters');
  const invalid = confInvalid(conf);
  return invalid === undefined ? { ok: true, conf } : no(invalid);
}
