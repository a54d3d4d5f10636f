import { randomBytes } from 'node:crypto';

/** Per-client exactly-once session (Raft thesis §6.3): a random id and a sequence of writes. */
export class Session {
  readonly clientId = randomClientId();
  private nextSeq = 1;
  /** Seqs without an answer yet, in increasing order (Set keeps insertion order). */
  private readonly outstanding = new Set<number>();
  /**
   * Whether the cluster knows this session: after the first answered write. Until then every
   * request says first_incomplete = 1, because a session starts only with such a request (a
   * first write that never made it into the log must not leave the session unstartable).
   */
  established = false;

  begin(): number {
    const seq = this.nextSeq++;
    this.outstanding.add(seq);
    return seq;
  }

  /** Called once per seq, whatever the outcome: the client will not ask about it again. */
  end(seq: number): void {
    this.outstanding.delete(seq);
  }

  firstIncomplete(): number {
    if (!this.established) return 1;
    const lowest = this.outstanding.values().next();
    return lowest.done ? this.nextSeq : lowest.value;
  }
}

/** One write's place in a session. */
export interface Ticket {
  session: Session;
  seq: number;
}

function randomClientId(): number {
  for (;;) {
    // 53 random bits: 7 bytes, top 3 bits dropped.
    const b = randomBytes(7);
    const id = (b[0]! & 0x1f) * 2 ** 48 + b.readUIntBE(1, 6);
    if (id > 0) return id;
  }
}
