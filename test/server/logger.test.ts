import { describe, expect, it } from 'vitest';
import { createLogger, type LoggerOptions } from '../../src/server/logger.js';

/** A logger whose lines are collected instead of written. */
function collect(opts: Partial<LoggerOptions> = {}) {
  const lines: string[] = [];
  const log = createLogger({ min: 'info', base: { node: 3 }, write: (l) => lines.push(l), stamp: () => 'T', ...opts });
  return { log, lines };
}

describe('the process logger', () => {
  it('writes one JSON object per line, with level name, time, msg, node, term, role and the fields flat', () => {
    const { log, lines } = collect({ format: 'json' });
    let status = { term: 7, role: 'leader' };
    log.bind(() => status);
    log.warn('refused a peer message', { kind: 'forged', from: 9 });
    status = { term: 8, role: 'follower' };
    log.info('following leader');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l.endsWith('\n') && !l.slice(0, -1).includes('\n')).toBe(true);
    const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(a).toEqual({ level: 'warn', time: expect.any(Number), msg: 'refused a peer message', node: 3, term: 7, role: 'leader', kind: 'forged', from: 9 });
    // Term and role are read at each line, not when bound.
    expect(b).toMatchObject({ level: 'info', msg: 'following leader', node: 3, term: 8, role: 'follower' });
  });

  it("lets a call's own field win over the bound one (a snapshot's term is not the node's)", () => {
    const { log, lines } = collect({ format: 'json' });
    log.bind(() => ({ term: 7, role: 'leader' }));
    log.info('compacted the log', { snapshot: 100, term: 5 });
    expect(JSON.parse(lines[0]!)).toMatchObject({ term: 5, role: 'leader', snapshot: 100 });
  });

  it('has node but no term or role before the node knows them', () => {
    const { log, lines } = collect({ format: 'json' });
    log.info('created data file');
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(o.node).toBe(3);
    expect(o).not.toHaveProperty('term');
    expect(o).not.toHaveProperty('role');
    expect(o).not.toHaveProperty('pid');
  });

  it('writes `ts LEVEL msg key=value` lines in text format, quoting values with spaces', () => {
    const { log, lines } = collect({ format: 'text' });
    log.bind(() => ({ term: 2, role: 'candidate' }));
    log.warn('snapshot failed', { error: 'disk full' });
    expect(lines).toEqual(['T WARN  snapshot failed node=3 term=2 role=candidate error="disk full"\n']);
  });

  it.each(['json', 'text'] as const)('drops lines below the threshold (%s)', (format) => {
    const { log, lines } = collect({ format, min: 'warn' });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('w');
    expect(lines[1]).toContain('e');
  });

  it('auto: JSON when the output is not a terminal, text when it is', () => {
    const pipe = collect({ format: 'auto', isTTY: false });
    pipe.log.info('hello');
    expect(JSON.parse(pipe.lines[0]!)).toMatchObject({ msg: 'hello', node: 3 });
    const tty = collect({ format: 'auto', isTTY: true });
    tty.log.info('hello');
    expect(tty.lines).toEqual(['T INFO  hello node=3\n']);
  });
});
