/**
 * kv-cli's membership commands (issue 12): `member list|add|promote|remove` and `leader transfer`,
 * their operands and flags, and what they print. The SDK does the work (membership.ts).
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkAddress } from '../address.js';
import { UsageError } from './address.js';
import type { CliIo } from './cli-main.js';
import { formatTable } from './cli-table.js';
import type { KvClient } from './client.js';
import type { Member, Membership } from './membership.js';

export type MemberCommand =
  | { kind: 'list' }
  | { kind: 'add'; id: number; peerAddr: string; clientAddr: string; learner: boolean }
  | { kind: 'promote'; id: number }
  | { kind: 'remove'; id: number; force: boolean }
  | { kind: 'transfer'; id: number };

/** The command groups: `kv-cli member ...`, `kv-cli leader ...`. */
export const MEMBER_GROUPS = ['member', 'leader'] as const;
export type MemberGroup = (typeof MEMBER_GROUPS)[number];

/** Each command: its words, its operands as the help shows them, and what it does. */
const SPECS = {
  'member list': { usage: 'member list', about: 'list the members: addresses, voter or learner, how far behind the leader' },
  'member add': {
    usage: 'member add ID PEER_ADDR --client-addr CLIENT_ADDR [--learner]',
    about: 'add node ID (a voter, or a learner); prints the kv-server command that starts it',
  },
  'member promote': { usage: 'member promote ID', about: 'make learner ID a voter (refused while it is far behind)' },
  'member remove': { usage: 'member remove ID [--force]', about: 'remove member ID (--force: even if the voters left have no live quorum)' },
  'leader transfer': { usage: 'leader transfer [ID]', about: 'hand leadership to voter ID (default: the most up-to-date one)' },
} as const;
type Name = keyof typeof SPECS;

/** The flags only these commands take, and the command that takes each. */
export const MEMBER_FLAGS = { 'client-addr': 'member add', learner: 'member add', force: 'member remove' } as const;
export type MemberFlags = { 'client-addr'?: string; learner?: boolean; force?: boolean };

/** --help's lines for these commands: the usage, and what it does below it. */
export function memberHelp(): string {
  return Object.values(SPECS)
    .map((s) => `  ${s.usage}\n      ${s.about}`)
    .join('\n');
}

export function parseMember(group: MemberGroup, rest: string[], flags: MemberFlags): MemberCommand {
  const subs = Object.keys(SPECS).filter((n) => n.startsWith(`${group} `)).map((n) => n.slice(group.length + 1));
  const [sub, ...operands] = rest;
  if (sub === undefined) throw new UsageError(`give a ${group} command: ${subs.map((s) => `${group} ${s}`).join(', ')}`);
  const name = `${group} ${sub}`;
  if (!Object.hasOwn(SPECS, name)) throw new UsageError(`unknown command "${name}" (${group} commands: ${subs.join(', ')})`);
  const usage = SPECS[name as Name].usage;
  for (const [flag, owner] of Object.entries(MEMBER_FLAGS)) {
    if (flags[flag as keyof MemberFlags] !== undefined && owner !== name) throw new UsageError(`--${flag} does not go with ${name}`);
  }
  const take = (count: number, optional = 0): string[] => {
    if (operands.length < count) throw new UsageError(`missing ${usage.split(' ').slice(2 + operands.length, 2 + count).join(' ')}: ${usage}`);
    if (operands.length > count + optional) {
      throw new UsageError(`unexpected argument(s) ${operands.slice(count + optional).map((a) => JSON.stringify(a)).join(' ')}: ${usage}`);
    }
    return operands;
  };
  switch (name as Name) {
    case 'member list':
      take(0);
      return { kind: 'list' };
    case 'member add': {
      const [id, peer] = take(2);
      if (flags['client-addr'] === undefined) throw new UsageError(`missing --client-addr CLIENT_ADDR: ${usage}`);
      return { kind: 'add', id: parseId(id!), peerAddr: parseAddr('PEER_ADDR', peer!), clientAddr: parseAddr('--client-addr', flags['client-addr']), learner: flags.learner === true };
    }
    case 'member promote':
      return { kind: 'promote', id: parseId(take(1)[0]!) };
    case 'member remove':
      return { kind: 'remove', id: parseId(take(1)[0]!), force: flags.force === true };
    case 'leader transfer': {
      const [id] = take(0, 1);
      return { kind: 'transfer', id: id === undefined ? 0 : parseId(id) };
    }
  }
}

function parseId(text: string): number {
  const id = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`ID must be a whole number from 1, got ${JSON.stringify(text)}`);
  return id;
}

function parseAddr(what: string, text: string): string {
  const r = checkAddress(text);
  if (!r.ok) throw new UsageError(`${what}: ${r.error}`);
  return r.address;
}

export async function runMember(cmd: MemberCommand, client: KvClient, json: boolean, io: CliIo): Promise<void> {
  const print = (v: unknown): void => io.out(JSON.stringify(v) + '\n');
  switch (cmd.kind) {
    case 'list': {
      const m = await client.members();
      if (json) print(listJson(m));
      else io.out(listText(m));
      return;
    }
    case 'add': {
      const res = await client.addMember(cmd.id, cmd.peerAddr, { clientAddr: cmd.clientAddr, learner: cmd.learner });
      const startCommand = kvServerCommand(cmd, res.members, client.endpoints);
      if (json) return print({ members: res.members.map(configJson), index: res.index, startCommand });
      io.out(
        `added node ${cmd.id} as a ${cmd.learner ? 'learner' : 'voter'}${at(res.index)}\n` +
          configTable(res.members) +
          `\nStart it with:\n  ${startCommand}\n` +
          (cmd.learner ? `Once it has caught up (kv-cli member list: LAG near 0): kv-cli member promote ${cmd.id}\n` : ''),
      );
      return;
    }
    case 'promote':
    case 'remove': {
      const res = cmd.kind === 'promote' ? await client.promoteMember(cmd.id) : await client.removeMember(cmd.id, { force: cmd.force });
      if (json) return print({ members: res.members.map(configJson), index: res.index });
      io.out(`${cmd.kind === 'promote' ? 'promoted node' : 'removed node'} ${cmd.id}${at(res.index)}\n` + configTable(res.members));
      return;
    }
    case 'transfer': {
      const r = await client.transferLeader(cmd.id);
      if (json) return print({ leaderId: r.leaderId, term: r.term });
      io.out(`node ${r.leaderId} leads now (term ${r.term})\n`);
      return;
    }
  }
}

/** " at log index N", or nothing when the change was found in force and its index is not known. */
const at = (index: number): string => (index > 0 ? ` at log index ${index}` : '');

/**
 * The command that starts the added node, joining through the client addresses of the other
 * members (the CLI's own endpoints if the configuration names none).
 */
export function kvServerCommand(
  cmd: { id: number; peerAddr: string; clientAddr: string },
  members: Member[],
  fallback: readonly string[],
  server: string = kvServerInvocation(),
): string {
  const others = members.filter((m) => m.id !== cmd.id && checkAddress(m.clientAddr).ok).map((m) => m.clientAddr);
  const join = (others.length > 0 ? others : fallback).join(',');
  const args = ['--id', String(cmd.id), '--peer-addr', cmd.peerAddr, '--client-addr', cmd.clientAddr, '--data-dir', `./data/node-${cmd.id}`, '--join', join];
  return [server, ...args.map(shellWord)].join(' ');
}

/**
 * How to start kv-server from here, so that the printed command works when pasted: `kv-server` if
 * the shell finds it on PATH (an installed package), else node and the kv-server beside this kv-cli
 * (a checkout, as after `make run`, where nothing is on PATH).
 */
export function kvServerInvocation(path = process.env['PATH'] ?? ''): string {
  for (const dir of path.split(nodePath.delimiter)) {
    if (dir === '') continue;
    try {
      fs.accessSync(nodePath.join(dir, 'kv-server'), fs.constants.X_OK);
      return 'kv-server';
    } catch {
      // not there
    }
  }
  return `node ${shellWord(fileURLToPath(new URL('../server/main.js', import.meta.url)))}`;
}

/** A word a POSIX shell takes as it is: quoted when it has anything but plain address characters (an IPv6 address's brackets). */
function shellWord(w: string): string {
  return /^[A-Za-z0-9_.:/,=-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** Whether `m` is the leader's view: only the leader knows each member's match index and activity. */
const fromLeader = (m: Membership): boolean => m.leaderId !== 0 && m.nodeId === m.leaderId;

function lag(m: Membership, x: Member): number {
  return Math.max(0, m.commitIndex - x.matchIndex);
}

function listJson(m: Membership): object {
  const known = fromLeader(m);
  return {
    members: m.members.map((x) => ({
      id: x.id,
      peerAddr: x.peerAddr,
      clientAddr: x.clientAddr,
      learner: x.learner,
      matchIndex: known ? x.matchIndex : null,
      lag: known ? lag(m, x) : null,
      active: known ? x.active : null,
    })),
    leaderId: m.leaderId,
    clusterId: m.clusterId,
    joint: m.joint,
    nodeId: m.nodeId,
    commitIndex: m.commitIndex,
  };
}

function listText(m: Membership): string {
  const known = fromLeader(m);
  const rows = [['ID', 'PEER ADDRESS', 'CLIENT ADDRESS', 'ROLE', 'MATCH', 'LAG', 'ACTIVE', 'LEADER']];
  for (const x of m.members) {
    rows.push([
      String(x.id),
      x.peerAddr,
      x.clientAddr || '-',
      x.learner ? 'learner' : 'voter',
      known ? String(x.matchIndex) : '-',
      known ? String(lag(m, x)) : '-',
      known ? (x.active ? 'yes' : 'no') : '-',
      x.id === m.leaderId ? '*' : '',
    ]);
  }
  const notes = [`cluster ${m.clusterId || '-'}, ${m.leaderId === 0 ? 'no leader known' : `leader node ${m.leaderId}`}`];
  if (m.joint) notes.push('a joint configuration is in force: a change of several voters is being completed');
  if (!known) notes.push(`answered by node ${m.nodeId}, not the leader: match index, lag and activity are the leader's to say`);
  return formatTable(rows) + notes.join('\n') + '\n';
}

/** A member as a change's answer gives it: the configuration, not the leader's view of it. */
function configJson(x: Member): object {
  return { id: x.id, peerAddr: x.peerAddr, clientAddr: x.clientAddr, learner: x.learner };
}

function configTable(members: Member[]): string {
  return formatTable([['ID', 'PEER ADDRESS', 'CLIENT ADDRESS', 'ROLE'], ...members.map((x) => [String(x.id), x.peerAddr, x.clientAddr || '-', x.learner ? 'learner' : 'voter'])]);
}
