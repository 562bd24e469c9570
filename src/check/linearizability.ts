// The linearizability checker for per-key registers (strong and chain keyspaces).
// Algorithm: Wing and Gong's search over the history's call and return events, with Lowe's
// improvement (remember each (set of linearized operations, register state) already tried
// and never try it again), run on each key alone: linearizability is compositional, so a
// history is linearizable iff every key's sub-history is (Herlihy and Wing's locality).
// Rules kept: the answer 'linearizable' is given only when every key was decided; a run out
// of budget or past a bound answers 'unknown', never 'linearizable'. Time is read only
// through the clock handed in (default performance.now), so tests can drive it.
import { assert } from '../core/bytes.ts';
import { validateHistory, type History, type Operation, type Value } from './history.ts';
import { CANNOT_APPLY, stepRegister } from './register-model.ts';

export const MAX_OPERATIONS_PER_KEY_DEFAULT = 10_000;
export const MAX_MEMO_ENTRIES_DEFAULT = 200_000;
/** The clock is read once per this many search steps: reading it each step costs more. */
const CLOCK_CHECK_INTERVAL_STEPS = 256;
/** How many operations of the linearizable prefix an explanation lists (the last ones). */
const EXPLANATION_PREFIX_OPERATIONS = 5;

export interface LinearizabilityOptions {
  /** Wall time the whole check may take, in milliseconds. */
  budgetMs: number;
  /** The clock, in milliseconds; performance.now by default. */
  nowMs?: () => number;
  /** A key with more operations (failed ones and unknown reads not counted) is 'unknown'. */
  maxOperationsPerKey?: number;
  /** Entries of the memo of one key's search; past it the key is 'unknown'. */
  maxMemoEntries?: number;
}

export type LinearizabilityAnswer = 'linearizable' | 'not-linearizable' | 'unknown';

export interface LinearizabilityResult {
  result: LinearizabilityAnswer;
  /** The key that is not linearizable, or the first key that could not be decided. */
  key?: string;
  /** Why, in a sentence or two, for 'not-linearizable' and 'unknown'. */
  explanation?: string;
  /**
   * For 'not-linearizable': indices into the history of the longest linearizable prefix the
   * search found on the key, in linearization order.
   */
  longestPrefix?: readonly number[];
  /** For 'not-linearizable': index into the history of the operation that could not be placed. */
  unplacedOperation?: number;
  /** Keys whose sub-history was decided linearizable. */
  keysLinearizable: number;
  keysTotal: number;
  elapsedMs: number;
}

/** One key's operations that matter to the search, with their indices in the whole history. */
interface KeyHistory {
  key: string;
  operations: Operation[];
  historyIndices: number[];
}

/** A node of the doubly linked list of events the search walks and edits. */
interface Event {
  isCall: boolean;
  /** The operation's position in its KeyHistory. */
  slot: number;
  /** For a call: its return event, or null when the operation never returned (unknown). */
  match: Event | null;
  prev: Event | null;
  next: Event | null;
}

type KeyOutcome =
  | { kind: 'linearizable' }
  | {
      kind: 'violation';
      prefixSlots: number[];
      unplacedSlot: number;
      stateAfterPrefix: Value;
    }
  | { kind: 'budget' }
  | { kind: 'memo' };

function defaultClock(): number {
  return performance.now();
}

/**
 * Decides whether `history` is linearizable with respect to a register per key. Throws on a
 * malformed history (see validateHistory); answers within about `budgetMs` otherwise.
 */
export function checkLinearizable(
  history: History,
  options: LinearizabilityOptions,
): LinearizabilityResult {
  assert(options.budgetMs >= 0, 'budgetMs is not negative');
  validateHistory(history);
  const nowMs = options.nowMs ?? defaultClock;
  const maxOperationsPerKey = options.maxOperationsPerKey ?? MAX_OPERATIONS_PER_KEY_DEFAULT;
  const maxMemoEntries = options.maxMemoEntries ?? MAX_MEMO_ENTRIES_DEFAULT;
  assert(maxOperationsPerKey > 0 && maxMemoEntries > 0, 'bounds are positive');
  const startedAtMs = nowMs();
  const deadlineMs = startedAtMs + options.budgetMs;
  const keyHistories = splitByKey(history);
  let keysLinearizable = 0;
  const budgetExplanation = (key: string): string =>
    `the budget of ${options.budgetMs} ms ran out while checking key ${JSON.stringify(key)} (${keysLinearizable} of ${keyHistories.length} keys found linearizable)`;
  // A key that cannot be decided does not stop the others: one of them may still show a
  // violation, which is a definite answer.
  let firstUndecided: { key: string; explanation: string } | null = null;
  const finish = (fields: Partial<LinearizabilityResult>): LinearizabilityResult => ({
    result: 'unknown',
    ...fields,
    keysLinearizable,
    keysTotal: keyHistories.length,
    elapsedMs: nowMs() - startedAtMs,
  });

  for (const keyHistory of keyHistories) {
    // Many small keys may each finish within one clock interval of the search: look here too.
    if (nowMs() >= deadlineMs) {
      return finish({ key: keyHistory.key, explanation: budgetExplanation(keyHistory.key) });
    }
    const count = keyHistory.operations.length;
    if (count > maxOperationsPerKey) {
      firstUndecided ??= {
        key: keyHistory.key,
        explanation: `key ${JSON.stringify(keyHistory.key)} has ${count} operations, more than the bound of ${maxOperationsPerKey}`,
      };
      continue;
    }
    const outcome = searchKey(keyHistory, nowMs, deadlineMs, maxMemoEntries);
    if (outcome.kind === 'linearizable') {
      keysLinearizable++;
    } else if (outcome.kind === 'violation') {
      return finish({
        result: 'not-linearizable',
        key: keyHistory.key,
        explanation: explainViolation(keyHistory, outcome),
        longestPrefix: outcome.prefixSlots.map((slot) => keyHistory.historyIndices[slot]!),
        unplacedOperation: keyHistory.historyIndices[outcome.unplacedSlot]!,
      });
    } else if (outcome.kind === 'memo') {
      firstUndecided ??= {
        key: keyHistory.key,
        explanation: `the search on key ${JSON.stringify(keyHistory.key)} remembered ${maxMemoEntries} states, the bound, without deciding`,
      };
    } else {
      return finish({ key: keyHistory.key, explanation: budgetExplanation(keyHistory.key) });
    }
  }
  if (firstUndecided !== null) return finish(firstUndecided);
  assert(keysLinearizable === keyHistories.length, 'every key was decided');
  return finish({ result: 'linearizable' });
}

/**
 * Groups operations by key, in the order keys first appear. Failed operations are left out
 * (they did not take effect), and so are reads of unknown outcome (they change nothing and
 * their output is unknown, so they constrain nothing).
 */
function splitByKey(history: History): KeyHistory[] {
  const byKey = new Map<string, KeyHistory>();
  for (let index = 0; index < history.length; index++) {
    const operation = history[index]!;
    if (operation.outcome === 'failed') continue;
    if (operation.outcome === 'unknown' && operation.op === 'get') continue;
    let keyHistory = byKey.get(operation.key);
    if (keyHistory === undefined) {
      keyHistory = { key: operation.key, operations: [], historyIndices: [] };
      byKey.set(operation.key, keyHistory);
    }
    keyHistory.operations.push(operation);
    keyHistory.historyIndices.push(index);
  }
  return [...byKey.values()];
}

/**
 * Builds the event list: a head sentinel, then calls and returns in time order. At equal
 * times calls come first, so an operation invoked at the instant another completed counts as
 * concurrent with it (the checker never rejects a history on a tie). An operation of unknown
 * outcome has no return event: it may take effect at any point after its call, or never.
 */
function buildEvents(operations: readonly Operation[]): Event {
  const pending: { timeMs: number; isCall: boolean; slot: number; event: Event }[] = [];
  for (let slot = 0; slot < operations.length; slot++) {
    const operation = operations[slot]!;
    const call: Event = { isCall: true, slot, match: null, prev: null, next: null };
    pending.push({ timeMs: operation.invokedAt, isCall: true, slot, event: call });
    if (operation.outcome === 'ok') {
      assert(operation.completedAt !== null, 'an ok operation has completed');
      const returned: Event = { isCall: false, slot, match: null, prev: null, next: null };
      call.match = returned;
      pending.push({ timeMs: operation.completedAt, isCall: false, slot, event: returned });
    }
  }
  pending.sort(
    (a, b) => a.timeMs - b.timeMs || Number(b.isCall) - Number(a.isCall) || a.slot - b.slot,
  );
  const head: Event = { isCall: false, slot: -1, match: null, prev: null, next: null };
  let last = head;
  for (const { event } of pending) {
    last.next = event;
    event.prev = last;
    last = event;
  }
  return head;
}

/** Takes a call and its return out of the list (the operation is linearized). */
function lift(call: Event): void {
  call.prev!.next = call.next;
  if (call.next !== null) call.next.prev = call.prev;
  const returned = call.match;
  if (returned !== null) {
    returned.prev!.next = returned.next;
    if (returned.next !== null) returned.next.prev = returned.prev;
  }
}

/** Puts back what lift took out; lifts are undone in reverse order, so the links still hold. */
function unlift(call: Event): void {
  const returned = call.match;
  if (returned !== null) {
    returned.prev!.next = returned;
    if (returned.next !== null) returned.next.prev = returned;
  }
  call.prev!.next = call;
  if (call.next !== null) call.next.prev = call;
}

/** A 32-bit mix of an operation's slot; the set's hash is the XOR of its members' mixes. */
function slotHash(slot: number): number {
  let hash = Math.imul(slot + 0x9e3779b9, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}

function valueHash(state: Value): number {
  if (state === null) return 0x5bd1e995;
  let hash = 0x811c9dc5;
  for (let i = 0; i < state.length; i++) hash = Math.imul(hash ^ state.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function equalWords(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The memo of Lowe's improvement: (linearized set, state) pairs already explored. */
class Memo {
  entries = 0;
  private readonly buckets = new Map<number, { linearized: Uint32Array; state: Value }[]>();

  /** Adds the pair and answers true, or answers false when it was already there. */
  add(linearized: Uint32Array, linearizedHash: number, state: Value): boolean {
    const hash = (linearizedHash ^ valueHash(state)) >>> 0;
    let bucket = this.buckets.get(hash);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(hash, bucket);
    }
    for (const entry of bucket) {
      if (entry.state === state && equalWords(entry.linearized, linearized)) return false;
    }
    bucket.push({ linearized: linearized.slice(), state });
    this.entries++;
    return true;
  }
}

function searchKey(
  keyHistory: KeyHistory,
  nowMs: () => number,
  deadlineMs: number,
  maxMemoEntries: number,
): KeyOutcome {
  const { operations } = keyHistory;
  const head = buildEvents(operations);
  let okRemaining = 0;
  for (const operation of operations) if (operation.outcome === 'ok') okRemaining++;
  const linearized = new Uint32Array(Math.ceil(operations.length / 32));
  let linearizedHash = 0;
  const memo = new Memo();
  const stack: { call: Event; stateBefore: Value }[] = [];
  let state: Value = null;
  let best: { prefixSlots: number[]; unplacedSlot: number; stateAfterPrefix: Value } | null = null;
  let event = head.next;
  let steps = 0;

  while (okRemaining > 0) {
    if (++steps % CLOCK_CHECK_INTERVAL_STEPS === 0 && nowMs() >= deadlineMs) {
      return { kind: 'budget' };
    }
    // An ok operation's return is still in the list, so the walk meets it before the end.
    assert(event !== null, 'the walk stops at a return event');
    if (event.isCall) {
      const slot = event.slot;
      const next = stepRegister(state, operations[slot]!);
      if (next !== CANNOT_APPLY) {
        const word = slot >>> 5;
        const bit = 1 << (slot & 31);
        linearized[word]! |= bit;
        const nextHash = (linearizedHash ^ slotHash(slot)) >>> 0;
        if (memo.add(linearized, nextHash, next)) {
          if (memo.entries > maxMemoEntries) return { kind: 'memo' };
          stack.push({ call: event, stateBefore: state });
          state = next;
          linearizedHash = nextHash;
          if (operations[slot]!.outcome === 'ok') okRemaining--;
          lift(event);
          event = head.next;
          continue;
        }
        linearized[word]! &= ~bit;
      }
      event = event.next;
      continue;
    }
    // A return reached before its operation was linearized: this branch is dead.
    if (best === null || stack.length > best.prefixSlots.length) {
      best = {
        prefixSlots: stack.map((frame) => frame.call.slot),
        unplacedSlot: event.slot,
        stateAfterPrefix: state,
      };
    }
    const frame = stack.pop();
    if (frame === undefined) {
      assert(best !== null, 'a violation has a deepest point');
      return { kind: 'violation', ...best };
    }
    const slot = frame.call.slot;
    linearized[slot >>> 5]! &= ~(1 << (slot & 31));
    linearizedHash = (linearizedHash ^ slotHash(slot)) >>> 0;
    state = frame.stateBefore;
    if (operations[slot]!.outcome === 'ok') okRemaining++;
    unlift(frame.call);
    event = frame.call.next;
  }
  return { kind: 'linearizable' };
}

function showValue(value: Value): string {
  return value === null ? 'absent' : JSON.stringify(value);
}

/** One operation as a reader would write it: `#12 client 3 get -> "a" [10, 14]`. */
export function describeOperation(operation: Operation, historyIndex: number): string {
  let call: string;
  switch (operation.op) {
    case 'get':
      call = 'get';
      break;
    case 'put':
      call = `put ${JSON.stringify(operation.input.value)}`;
      break;
    case 'delete':
      call = 'delete';
      break;
    case 'cas':
      call = `cas ${showValue(operation.input.expected)} to ${JSON.stringify(operation.input.value)}`;
      break;
    case 'incr':
      call = `incr ${operation.input.delta}`;
      break;
  }
  let result = '';
  if (operation.outcome === 'unknown') result = ' -> unknown';
  else if (operation.op === 'get') result = ` -> ${showValue(operation.output)}`;
  else if (operation.op === 'cas' || operation.op === 'incr') {
    result = ` -> ${String(operation.output)}`;
  }
  const completed = operation.completedAt === null ? 'never' : String(operation.completedAt);
  return `#${historyIndex} client ${operation.client} ${call}${result} [${operation.invokedAt}, ${completed}]`;
}

function explainViolation(
  keyHistory: KeyHistory,
  violation: Extract<KeyOutcome, { kind: 'violation' }>,
): string {
  const { operations, historyIndices } = keyHistory;
  const describe = (slot: number): string =>
    describeOperation(operations[slot]!, historyIndices[slot]!);
  const { prefixSlots, unplacedSlot, stateAfterPrefix } = violation;
  const shown = prefixSlots.slice(-EXPLANATION_PREFIX_OPERATIONS).map(describe);
  const elided = prefixSlots.length - shown.length;
  const prefixText =
    prefixSlots.length === 0
      ? 'no operation can be linearized first'
      : `the longest linearizable prefix found has ${prefixSlots.length} operation(s)` +
        (elided > 0 ? `, ending ${shown.join('; ')}` : `: ${shown.join('; ')}`);
  const unplaced = operations[unplacedSlot]!;
  const applies = stepRegister(stateAfterPrefix, unplaced) !== CANNOT_APPLY;
  const reason = applies
    ? 'every order that places it here has already been tried and fails later'
    : 'a register cannot give that result from there';
  return (
    `key ${JSON.stringify(keyHistory.key)} (${operations.length} operations) is not linearizable: ` +
    `${prefixText}, leaving the register ${showValue(stateAfterPrefix)}; ` +
    `then ${describe(unplacedSlot)} must take effect before it completes, but ${reason}`
  );
}
