// Transcripts: small text scripts that drive a whole simulated cluster (a ClusterWorld), one
// command a line, and the text a run produces: every line of the script echoed, each command
// at its virtual time with its result after `->`. Scripts and their recorded output live side
// by side (test/sim/transcripts/), so a change in the protocol shows as a diff a reviewer can
// read, as in etcd's raft tests. The language is described in docs/CHECKERS.md
// ("Transcripts").
//
// Rules it keeps:
// - A script is parsed whole before anything runs: a bad line is an error that names its
//   line number and the form that was expected, and nothing runs.
// - Node numbers are 1-based and name the ids n1..nM of the world.
// - An `expect`, `wait` or `stabilize` that does not hold stops the run; the result carries
//   that failure whatever output was recorded, so recording cannot launder it.
// - Nothing here reads a real clock or draws an unseeded number: the same script always
//   gives the same output.

import { assert, fromUtf8, utf8 } from '../core/bytes.ts';
import { DEFAULT_KEYSPACE, type ConflictPolicy, type Keyspace } from '../core/keyspace.ts';
import type { ClientReply, ClientRequest, QuorumSpec } from '../core/requests.ts';
import type { Liveness } from '../core/swim/messages.ts';
import { ClusterWorld } from './cluster-world.ts';

/** A script line that does not parse: the message names the line and the expected form. */
export class TranscriptSyntaxError extends Error {
  readonly lineNumber: number;

  constructor(lineNumber: number, message: string) {
    super(`line ${lineNumber}: ${message}`);
    this.name = 'TranscriptSyntaxError';
    this.lineNumber = lineNumber;
  }
}

export interface TranscriptResult {
  /** Every script line echoed, commands with their virtual time and result. */
  readonly output: string;
  /** Why the run stopped early (`line N: ...`), or null when every line ran and held. */
  readonly failure: string | null;
}

type Comparison = '=' | '>' | '<';

/** One parsed command. Nodes are 1-based numbers, durations are milliseconds. */
export type TranscriptAction =
  | { readonly kind: 'seed'; readonly seed: number }
  | {
      readonly kind: 'nodes';
      readonly count: number;
      readonly n: number;
      readonly r: number;
      readonly w: number;
      readonly conflicts: ConflictPolicy;
      readonly hintedHandoff: boolean;
      readonly readRepair: boolean;
      readonly antiEntropy: boolean;
    }
  | { readonly kind: 'partition'; readonly groups: readonly (readonly number[])[] }
  | { readonly kind: 'isolate' | 'crash' | 'restart'; readonly node: number }
  | { readonly kind: 'cut'; readonly from: number; readonly to: number }
  | { readonly kind: 'pause'; readonly node: number; readonly durationMs: number }
  | { readonly kind: 'skew'; readonly node: number; readonly offsetMs: number }
  | { readonly kind: 'loss'; readonly rate: number }
  | { readonly kind: 'heal' }
  | { readonly kind: 'tick'; readonly durationMs: number }
  | {
      readonly kind: 'put';
      readonly key: string;
      readonly value: string;
      readonly via: number;
      readonly w: QuorumSpec | undefined;
    }
  | {
      readonly kind: 'del';
      readonly key: string;
      readonly via: number;
      readonly w: QuorumSpec | undefined;
    }
  | {
      readonly kind: 'get';
      readonly key: string;
      readonly via: number;
      readonly r: QuorumSpec | undefined;
    }
  | { readonly kind: 'replicas'; readonly key: string }
  | { readonly kind: 'status' }
  | { readonly kind: 'stabilize'; readonly timeoutMs: number }
  | {
      readonly kind: 'wait';
      readonly state: Liveness;
      readonly node: number;
      /** Undefined: every other node that is up. */
      readonly from: number | undefined;
      readonly timeoutMs: number;
    }
  | {
      readonly kind: 'expect-get';
      readonly key: string;
      readonly via: number;
      readonly r: QuorumSpec | undefined;
      readonly value: string | null;
    }
  | { readonly kind: 'expect-replicas'; readonly key: string; readonly value: string | null }
  | {
      readonly kind: 'expect-stored';
      readonly key: string;
      readonly node: number;
      readonly value: string | null;
    }
  | {
      readonly kind: 'expect-liveness';
      readonly state: Liveness;
      readonly node: number;
      /** Undefined: every other node that is up. */
      readonly from: number | undefined;
    }
  | {
      readonly kind: 'expect-hints';
      readonly comparison: Comparison;
      readonly count: number;
      readonly on: number | undefined;
      readonly owner: number | undefined;
    };

export interface TranscriptLine {
  readonly lineNumber: number;
  /** The line as written, without its line break. */
  readonly text: string;
  /** Null for a blank or comment line. */
  readonly action: TranscriptAction | null;
}

/** The form of each command, as error messages and the docs show it. */
export const TRANSCRIPT_USAGE = {
  seed: 'seed NUMBER',
  nodes:
    'nodes COUNT [n=N] [r=R] [w=W] [conflicts=lww|siblings] [handoff=on|off] [repair=on|off] [antientropy=on|off]',
  partition: 'partition NODE,NODE | NODE,... [| ...]',
  isolate: 'isolate NODE',
  crash: 'crash NODE',
  restart: 'restart NODE',
  cut: 'cut FROM>TO',
  pause: 'pause NODE DURATION',
  skew: 'skew NODE [+|-]DURATION',
  loss: 'loss RATE (0 to 1)',
  heal: 'heal',
  tick: 'tick DURATION',
  put: 'put KEY VALUE [via NODE] [w=QUORUM]',
  del: 'del KEY [via NODE] [w=QUORUM]',
  get: 'get KEY [via NODE] [r=QUORUM]',
  replicas: 'replicas KEY',
  status: 'status',
  stabilize: 'stabilize [within DURATION]',
  wait: 'wait alive|suspect|down NODE [from NODE] [within DURATION]',
  expect:
    'expect get KEY [via NODE] [r=QUORUM] = VALUE|nil, expect replicas KEY = VALUE|nil, ' +
    'expect stored KEY on NODE = VALUE|nil, expect alive|suspect|down NODE [from NODE], ' +
    'or expect hints [>|<] COUNT [on NODE] [for NODE]',
} as const;

type CommandName = keyof typeof TRANSCRIPT_USAGE;

const NODE_COUNT_MAX = 16;
const FORM_TIMEOUT_MS = 5_000;
const SETTLE_TIMEOUT_MS = 30_000;
const WAIT_TIMEOUT_MS = 30_000;
/** A request through a paused node waits for it; past this the run reports no reply. */
const CALL_TIMEOUT_MS = 10_000;
const KEYSPACE = DEFAULT_KEYSPACE.name;
const KEYSPACE_ID = DEFAULT_KEYSPACE.id;

interface Token {
  readonly text: string;
  /** A double-quoted literal: never a keyword, and `"nil"` is the string nil. */
  readonly quoted: boolean;
}

/** Parses a whole script; throws TranscriptSyntaxError at the first bad line. */
export function parseTranscript(script: string): TranscriptLine[] {
  const lines: TranscriptLine[] = [];
  let nodeCount: number | null = null;
  let seedSeen = false;
  const texts = script.split('\n');
  if (texts.at(-1) === '') texts.pop();
  texts.forEach((rawText, index) => {
    const text = rawText.replace(/\r$/, '');
    const lineNumber = index + 1;
    const tokens = tokenize(text, lineNumber);
    if (tokens.length === 0) {
      lines.push({ lineNumber, text, action: null });
      return;
    }
    const parser = new LineParser(lineNumber, tokens, nodeCount);
    const action = parser.parse();
    if (action.kind === 'seed') {
      if (seedSeen || nodeCount !== null) {
        throw new TranscriptSyntaxError(lineNumber, 'one "seed NUMBER" only, before "nodes"');
      }
      seedSeen = true;
    }
    if (action.kind === 'nodes') {
      if (nodeCount !== null) {
        throw new TranscriptSyntaxError(lineNumber, 'the cluster was already created');
      }
      if (!seedSeen) {
        throw new TranscriptSyntaxError(
          lineNumber,
          `expected "${TRANSCRIPT_USAGE.seed}" before "nodes": every run names its seed`,
        );
      }
      nodeCount = action.count;
    }
    lines.push({ lineNumber, text, action });
  });
  return lines;
}

/** Parses and runs a script against a new ClusterWorld; throws only for syntax errors. */
export function runTranscript(script: string): TranscriptResult {
  const lines = parseTranscript(script);
  const runner = new TranscriptRunner();
  for (const line of lines) {
    if (line.action === null) {
      runner.echo(line.text);
      continue;
    }
    const stop = runner.run(line);
    if (stop !== null) {
      const failure = `line ${line.lineNumber}: ${line.text.trim()}: ${stop}`;
      runner.echo(`stopped at ${failure}`);
      return { output: runner.text(), failure };
    }
  }
  return { output: runner.text(), failure: null };
}

function tokenize(text: string, lineNumber: number): Token[] {
  const tokens: Token[] = [];
  const pattern = /\s*(?:("(?:[^"\\]|\\.)*")|([^\s"]+)|("))/y;
  while (pattern.lastIndex < text.length) {
    const match = pattern.exec(text);
    if (match === null) break; // only white space is left
    const [, quoted, plain, strayQuote] = match;
    if (strayQuote !== undefined) {
      throw new TranscriptSyntaxError(lineNumber, 'a quoted string is not closed');
    }
    if (quoted !== undefined) {
      let literal: unknown;
      try {
        literal = JSON.parse(quoted);
      } catch {
        throw new TranscriptSyntaxError(lineNumber, `bad escape in ${quoted}`);
      }
      assert(typeof literal === 'string', 'a JSON string literal parses to a string');
      tokens.push({ text: literal, quoted: true });
      continue;
    }
    assert(plain !== undefined, 'a token matched');
    if (plain.startsWith('#')) break; // a comment runs to the end of the line
    tokens.push({ text: plain, quoted: false });
  }
  return tokens;
}

/** Parses one command line; `nodeCount` is null until `nodes` has created the cluster. */
class LineParser {
  private readonly lineNumber: number;
  private readonly tokens: readonly Token[];
  private readonly nodeCount: number | null;
  private position = 0;
  private command: CommandName = 'seed';

  constructor(lineNumber: number, tokens: readonly Token[], nodeCount: number | null) {
    this.lineNumber = lineNumber;
    this.tokens = tokens;
    this.nodeCount = nodeCount;
  }

  parse(): TranscriptAction {
    const first = this.tokens[0]!;
    const name = first.text;
    if (first.quoted || !Object.hasOwn(TRANSCRIPT_USAGE, name)) {
      throw new TranscriptSyntaxError(
        this.lineNumber,
        `unknown command "${name}"; expected one of ${Object.keys(TRANSCRIPT_USAGE).join(', ')}`,
      );
    }
    this.command = name as CommandName;
    this.position = 1;
    if (this.command !== 'seed' && this.command !== 'nodes' && this.nodeCount === null) {
      throw new TranscriptSyntaxError(
        this.lineNumber,
        `no cluster yet: expected "${TRANSCRIPT_USAGE.nodes}" before "${name}"`,
      );
    }
    const action = this.parseCommand();
    if (this.position < this.tokens.length) {
      this.fail(`unexpected "${this.tokens[this.position]!.text}"`);
    }
    return action;
  }

  private parseCommand(): TranscriptAction {
    switch (this.command) {
      case 'seed':
        return { kind: 'seed', seed: this.integer('a seed', 0, 0xffff_ffff) };
      case 'nodes':
        return this.parseNodes();
      case 'partition': {
        const groups = this.rest('groups', ' ')
          .split('|')
          .map((group) => this.nodeList(group));
        if (groups.length < 2) this.fail('a partition needs at least two groups');
        const all = groups.flat();
        if (new Set(all).size !== all.length) this.fail('a node is in two groups');
        return { kind: 'partition', groups };
      }
      case 'isolate':
      case 'crash':
      case 'restart':
        return { kind: this.command, node: this.node() };
      case 'cut': {
        const ends = this.rest('FROM>TO', '').split('>');
        if (ends.length !== 2) this.fail('a cut names FROM>TO');
        const [from, to] = ends.map((end) => this.nodeNumber(end));
        if (from === to) this.fail('a cut joins two different nodes');
        return { kind: 'cut', from: from!, to: to! };
      }
      case 'pause':
        return { kind: 'pause', node: this.node(), durationMs: this.duration(false) };
      case 'skew':
        return { kind: 'skew', node: this.node(), offsetMs: this.duration(true) };
      case 'loss': {
        const text = this.next('a rate');
        const rate = Number(text);
        if (!/^\d+(\.\d+)?$/.test(text) || rate > 1) this.fail(`"${text}" is not a rate`);
        return { kind: 'loss', rate };
      }
      case 'heal':
        return { kind: 'heal' };
      case 'tick':
        return { kind: 'tick', durationMs: this.duration(false) };
      case 'put': {
        const key = this.literal('a key');
        const value = this.literal('a value');
        const options = this.requestOptions('w');
        return { kind: 'put', key, value, via: options.via, w: options.quorum };
      }
      case 'del': {
        const key = this.literal('a key');
        const options = this.requestOptions('w');
        return { kind: 'del', key, via: options.via, w: options.quorum };
      }
      case 'get': {
        const key = this.literal('a key');
        const options = this.requestOptions('r');
        return { kind: 'get', key, via: options.via, r: options.quorum };
      }
      case 'replicas':
        return { kind: 'replicas', key: this.literal('a key') };
      case 'status':
        return { kind: 'status' };
      case 'stabilize':
        return { kind: 'stabilize', timeoutMs: this.within(SETTLE_TIMEOUT_MS) };
      case 'wait': {
        const state = this.liveness();
        const node = this.node();
        const from = this.observer(node);
        return { kind: 'wait', state, node, from, timeoutMs: this.within(WAIT_TIMEOUT_MS) };
      }
      case 'expect':
        return this.parseExpect();
    }
  }

  private parseNodes(): TranscriptAction {
    const count = this.integer('a node count', 1, NODE_COUNT_MAX);
    const settings = {
      n: Math.min(3, count),
      r: 0,
      w: 0,
      conflicts: DEFAULT_KEYSPACE.conflicts,
      hintedHandoff: true,
      readRepair: true,
      antiEntropy: true,
    };
    let r: string | null = null;
    let w: string | null = null;
    while (this.position < this.tokens.length) {
      const [name, value] = this.setting();
      if (name === 'n') settings.n = this.settingInteger(value, 1, count);
      else if (name === 'r') r = value;
      else if (name === 'w') w = value;
      else if (name === 'conflicts' && (value === 'lww' || value === 'siblings'))
        settings.conflicts = value;
      else if (name === 'handoff' && (value === 'on' || value === 'off'))
        settings.hintedHandoff = value === 'on';
      else if (name === 'repair' && (value === 'on' || value === 'off'))
        settings.readRepair = value === 'on';
      else if (name === 'antientropy' && (value === 'on' || value === 'off'))
        settings.antiEntropy = value === 'on';
      else this.fail(`unknown setting "${name}=${value}"`);
    }
    // Defaults follow n as the default keyspace's do: a majority each way.
    settings.r = this.keyspaceQuorum(r ?? 'quorum', settings.n);
    settings.w = this.keyspaceQuorum(w ?? 'quorum', settings.n);
    return { kind: 'nodes', count, ...settings };
  }

  private parseExpect(): TranscriptAction {
    const what = this.next('what to expect');
    switch (what) {
      case 'get': {
        const key = this.literal('a key');
        let via = 1;
        let r: QuorumSpec | undefined;
        let value: string | null | undefined;
        while (this.position < this.tokens.length) {
          const token = this.tokens[this.position]!;
          if (!token.quoted && token.text === '=' && value === undefined) {
            this.position++;
            value = this.expectedValue();
            continue;
          }
          const option = this.option('r');
          if (option.via !== undefined) via = option.via;
          if (option.quorum !== undefined) r = option.quorum;
        }
        if (value === undefined) this.fail('no "= VALUE" (or "= nil")');
        return { kind: 'expect-get', key, via, r, value };
      }
      case 'replicas': {
        const key = this.literal('a key');
        this.keyword('=');
        return { kind: 'expect-replicas', key, value: this.expectedValue() };
      }
      case 'stored': {
        const key = this.literal('a key');
        this.keyword('on');
        const node = this.node();
        this.keyword('=');
        return { kind: 'expect-stored', key, node, value: this.expectedValue() };
      }
      case 'alive':
      case 'suspect':
      case 'down': {
        const node = this.node();
        return { kind: 'expect-liveness', state: what, node, from: this.observer(node) };
      }
      case 'hints': {
        let comparison: Comparison = '=';
        const peeked = this.tokens[this.position];
        if (peeked !== undefined && ['=', '>', '<'].includes(peeked.text) && !peeked.quoted) {
          comparison = peeked.text as Comparison;
          this.position++;
        }
        const count = this.integer('a hint count', 0, Number.MAX_SAFE_INTEGER);
        let on: number | undefined;
        let owner: number | undefined;
        while (this.position < this.tokens.length) {
          const word = this.next('"on NODE" or "for NODE"');
          if (word === 'on' && on === undefined) on = this.node();
          else if (word === 'for' && owner === undefined) owner = this.node();
          else this.fail(`unexpected "${word}"`);
        }
        return { kind: 'expect-hints', comparison, count, on, owner };
      }
      default:
        return this.fail(`cannot expect "${what}"`);
    }
  }

  /** Trailing `via NODE` and `r=`/`w=` options of a request. */
  private requestOptions(quorumName: 'r' | 'w'): {
    via: number;
    quorum: QuorumSpec | undefined;
  } {
    let via = 1;
    let quorum: QuorumSpec | undefined;
    while (this.position < this.tokens.length) {
      const option = this.option(quorumName);
      if (option.via !== undefined) via = option.via;
      if (option.quorum !== undefined) quorum = option.quorum;
    }
    return { via, quorum };
  }

  private option(quorumName: 'r' | 'w'): { via?: number; quorum?: QuorumSpec } {
    const word = this.next(`"via NODE" or "${quorumName}=QUORUM"`);
    if (word === 'via') return { via: this.node() };
    const prefix = `${quorumName}=`;
    if (!word.startsWith(prefix)) return this.fail(`unexpected "${word}"`);
    const spec = word.slice(prefix.length);
    if (spec === 'one' || spec === 'quorum' || spec === 'all') return { quorum: spec };
    return { quorum: this.settingInteger(spec, 1, NODE_COUNT_MAX) };
  }

  /** A keyspace's r or w: one, quorum, all or a number up to n. */
  private keyspaceQuorum(text: string, n: number): number {
    if (text === 'one') return 1;
    if (text === 'quorum') return Math.floor(n / 2) + 1;
    if (text === 'all') return n;
    return this.settingInteger(text, 1, n);
  }

  private setting(): [string, string] {
    const word = this.next('NAME=VALUE');
    const equals = word.indexOf('=');
    if (equals <= 0) this.fail(`"${word}" is not NAME=VALUE`);
    return [word.slice(0, equals), word.slice(equals + 1)];
  }

  private settingInteger(text: string, min: number, max: number): number {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      this.fail(`"${text}" is not a whole number from ${min} to ${max}`);
    }
    return value;
  }

  private integer(what: string, min: number, max: number): number {
    const text = this.next(what);
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      this.fail(`${what} is a whole number from ${min} to ${max}, got "${text}"`);
    }
    return value;
  }

  private node(): number {
    return this.nodeNumber(this.next('a node number'));
  }

  private nodeNumber(text: string): number {
    const count = this.nodeCount ?? 0;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < 1 || value > count) {
      this.fail(`"${text}" is not a node: nodes are numbered 1 to ${count}`);
    }
    return value;
  }

  /** An optional `from NODE`, another node than `node`. */
  private observer(node: number): number | undefined {
    const token = this.tokens[this.position];
    if (token === undefined || token.quoted || token.text !== 'from') return undefined;
    this.position++;
    const from = this.node();
    if (from === node) this.fail('a node does not watch itself');
    return from;
  }

  /** Nodes separated by commas or spaces. */
  private nodeList(text: string): number[] {
    const parts = text.split(/[\s,]+/).filter((part) => part !== '');
    if (parts.length === 0) this.fail('an empty group');
    return parts.map((part) => this.nodeNumber(part));
  }

  private liveness(): Liveness {
    const word = this.next('alive, suspect or down');
    if (word !== 'alive' && word !== 'suspect' && word !== 'down') {
      this.fail(`"${word}" is not alive, suspect or down`);
    }
    return word;
  }

  /** `500ms`, `2s`, `1.5s`; signed (`+2s`, `-500ms`) when `signed`. */
  private duration(signed: boolean): number {
    const text = this.next('a duration');
    const match = /^([+-]?)(\d+(?:\.\d+)?)(ms|s)$/.exec(text);
    if (match === null || (!signed && match[1] !== '')) {
      this.fail(`"${text}" is not a duration: write 500ms or 2s`);
    }
    const magnitude = Math.round(Number(match[2]) * (match[3] === 's' ? 1_000 : 1));
    return match[1] === '-' ? -magnitude : magnitude;
  }

  private within(fallbackMs: number): number {
    if (this.position === this.tokens.length) return fallbackMs;
    this.keyword('within');
    const timeoutMs = this.duration(false);
    if (timeoutMs <= 0) this.fail('a time limit is positive');
    return timeoutMs;
  }

  private keyword(word: string): void {
    const token = this.tokens[this.position];
    if (token === undefined || token.quoted || token.text !== word) {
      this.fail(`expected "${word}"${token === undefined ? '' : `, got "${token.text}"`}`);
    }
    this.position++;
  }

  /** A key or a value: any token, quoted or not. */
  private literal(what: string): string {
    const token = this.tokens[this.position];
    if (token === undefined) return this.fail(`missing ${what}`);
    this.position++;
    return token.text;
  }

  /** The value an expectation wants: `nil` (unquoted) means no live value. */
  private expectedValue(): string | null {
    const token = this.tokens[this.position];
    if (token === undefined) return this.fail('missing the expected value (or nil)');
    this.position++;
    return !token.quoted && token.text === 'nil' ? null : token.text;
  }

  private next(what: string): string {
    const token = this.tokens[this.position];
    if (token === undefined) return this.fail(`missing ${what}`);
    this.position++;
    return token.text;
  }

  /** The tokens left, joined by `separator`. */
  private rest(what: string, separator: string): string {
    const text = this.tokens
      .slice(this.position)
      .map((token) => token.text)
      .join(separator);
    if (text === '') this.fail(`missing ${what}`);
    this.position = this.tokens.length;
    return text;
  }

  private fail(problem: string): never {
    throw new TranscriptSyntaxError(
      this.lineNumber,
      `${problem}; expected "${TRANSCRIPT_USAGE[this.command]}"`,
    );
  }
}

/** Runs parsed commands one by one against the world the `nodes` command creates. */
class TranscriptRunner {
  private readonly lines: string[] = [];
  private world: ClusterWorld | null = null;
  private seed = 0;
  private startMs = 0;
  private replicationFactor = 0;
  /** Pauses this run asked for, by node id: the world does not say which nodes are paused. */
  private readonly pausedUntilMs = new Map<string, number>();

  echo(text: string): void {
    this.lines.push(text);
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }

  /** Runs one command and echoes it with its result; answers why the run must stop, or null. */
  run(line: TranscriptLine): string | null {
    assert(line.action !== null, 'only commands run');
    const atMs = this.world === null ? 0 : this.world.nowMs - this.startMs;
    const prefix = `[${formatSeconds(atMs).padStart(8)}] ${line.text.trim()}`;
    const outcome = this.perform(line.action);
    const result = outcome.stop !== null ? `FAILED: ${outcome.stop}` : outcome.result;
    const [first = '', ...more] = result.split('\n');
    this.lines.push(first === '' ? prefix : `${prefix} -> ${first}`);
    for (const extra of more) this.lines.push(`${' '.repeat(11)}${extra}`);
    return outcome.stop;
  }

  private perform(action: TranscriptAction): { result: string; stop: string | null } {
    const done = (result: string) => ({ result, stop: null });
    const stop = (reason: string) => ({ result: '', stop: reason });
    if (action.kind === 'seed') {
      this.seed = action.seed;
      return done('');
    }
    if (action.kind === 'nodes') return this.createWorld(action);
    const world = this.world;
    assert(world !== null, 'the parser puts "nodes" before every other command');
    switch (action.kind) {
      case 'partition':
        world.partition(action.groups.map((group) => group.map(idOf)));
        return done('');
      case 'isolate':
        world.isolate(idOf(action.node));
        return done('');
      case 'cut':
        world.cut(idOf(action.from), idOf(action.to));
        return done('');
      case 'crash': {
        const id = idOf(action.node);
        if (!world.isUp(id)) return stop(`${id} is already crashed`);
        world.crash(id);
        return done('');
      }
      case 'restart': {
        const id = idOf(action.node);
        if (world.isUp(id)) return stop(`${id} is up: only a crashed node restarts`);
        world.restart(id);
        return done('');
      }
      case 'pause': {
        const id = idOf(action.node);
        world.pause(id, action.durationMs);
        const untilMs = Math.max(this.pausedUntilMs.get(id) ?? 0, world.nowMs + action.durationMs);
        this.pausedUntilMs.set(id, untilMs);
        return done(`paused until ${formatSeconds(untilMs - this.startMs)}`);
      }
      case 'skew':
        world.skewClock(idOf(action.node), action.offsetMs);
        return done('');
      case 'loss':
        world.setLossRate(action.rate);
        return done('');
      case 'heal':
        world.healAll();
        return done('');
      case 'tick':
        world.runFor(action.durationMs);
        return done('');
      case 'put':
      case 'del': {
        const reply = this.call(action.via, writeRequest(action));
        return done(typeof reply === 'string' ? reply : describeWrite(reply));
      }
      case 'get': {
        const reply = this.call(action.via, readRequest(action.key, action.r));
        return done(typeof reply === 'string' ? reply : describeRead(reply));
      }
      case 'replicas':
        return done(this.replicas(action.key).join(' '));
      case 'status':
        return done(`\n${this.status().join('\n')}`);
      case 'stabilize':
        return this.stabilize(action.timeoutMs);
      case 'wait':
        return this.waitFor(action.state, action.node, action.from, action.timeoutMs);
      case 'expect-get': {
        const reply = this.call(action.via, readRequest(action.key, action.r));
        if (typeof reply === 'string') return stop(`wanted ${show(action.value)}, got ${reply}`);
        if (!reply.ok) return stop(`wanted ${show(action.value)}, got ${reply.error.code}`);
        const found = readValue(reply);
        return found === action.value
          ? done('ok')
          : stop(`wanted ${show(action.value)}, got ${show(found)}`);
      }
      case 'expect-replicas': {
        const ids = this.replicas(action.key);
        const held = ids.map((id) => `${id} ${show(this.stored(id, action.key))}`);
        const agree = ids.every((id) => this.stored(id, action.key) === action.value);
        return agree ? done(`ok (${ids.join(' ')})`) : stop(`replicas hold ${held.join(', ')}`);
      }
      case 'expect-stored': {
        const found = this.stored(idOf(action.node), action.key);
        return found === action.value
          ? done('ok')
          : stop(`wanted ${show(action.value)}, ${idOf(action.node)} holds ${show(found)}`);
      }
      case 'expect-liveness': {
        const target = idOf(action.node);
        const observers = this.observers(target, action.from);
        if (observers.length === 0) return stop(`no node that is up watches ${target}`);
        const wrong = this.viewsOtherThan(action.state, target, observers);
        return wrong.length === 0 ? done('ok') : stop(wrong.join(', '));
      }
      case 'expect-hints': {
        const count = this.hintCount(action.on, action.owner);
        const holds =
          action.comparison === '='
            ? count === action.count
            : action.comparison === '>'
              ? count > action.count
              : count < action.count;
        return holds ? done(`ok (${count})`) : stop(`${count} hints held`);
      }
    }
  }

  private createWorld(action: Extract<TranscriptAction, { kind: 'nodes' }>) {
    const keyspace: Keyspace = {
      ...DEFAULT_KEYSPACE,
      n: action.n,
      r: action.r,
      w: action.w,
      conflicts: action.conflicts,
    };
    const world = new ClusterWorld({
      seed: this.seed,
      nodeCount: action.count,
      keyspaces: [keyspace],
      hintedHandoff: action.hintedHandoff,
      readRepair: action.readRepair,
      antiEntropy: action.antiEntropy,
    });
    this.world = world;
    this.startMs = world.nowMs;
    this.replicationFactor = action.n;
    if (!world.waitFormed(FORM_TIMEOUT_MS)) {
      return { result: '', stop: `the cluster did not form within ${FORM_TIMEOUT_MS} ms` };
    }
    const settings = [
      `n=${action.n} r=${action.r} w=${action.w} ${action.conflicts}`,
      action.hintedHandoff ? '' : ' handoff=off',
      action.readRepair ? '' : ' repair=off',
      action.antiEntropy ? '' : ' antientropy=off',
    ].join('');
    return { result: `formed ${world.ids[0]}..${world.ids.at(-1)} (${settings})`, stop: null };
  }

  private call(via: number, request: ClientRequest): ClientReply | string {
    const world = this.requireWorld();
    try {
      return world.call(idOf(via), request, CALL_TIMEOUT_MS);
    } catch (error) {
      // The world throws only when no reply came in time (a node paused for longer).
      assert(error instanceof Error && error.message.startsWith('no reply'), String(error));
      return `no reply within ${formatSeconds(CALL_TIMEOUT_MS)}`;
    }
  }

  private replicas(key: string): string[] {
    const world = this.requireWorld();
    if (!world.ids.some((id) => world.isUp(id))) return [];
    return world.replicasOf(KEYSPACE_ID, utf8(key), this.replicationFactor);
  }

  private stored(id: string, key: string): string | null {
    const winner = this.requireWorld().storedWinner(id, KEYSPACE_ID, utf8(key));
    return winner === null ? null : fromUtf8(winner);
  }

  /** Hints held by nodes that are up (`on`: one holder; `owner`: those waiting for it). */
  private hintCount(on: number | undefined, owner: number | undefined): number {
    const world = this.requireWorld();
    let count = 0;
    for (const id of world.ids) {
      if (!world.isUp(id) || (on !== undefined && idOf(on) !== id)) continue;
      const status = world.node(id).clusterStatus();
      count += owner === undefined ? status.hintsTotal : (status.hintsPending[idOf(owner)] ?? 0);
    }
    return count;
  }

  /** One line per node: what it sees that is not alive, and the hints it holds. */
  private status(): string[] {
    const world = this.requireWorld();
    return world.ids.map((id) => {
      if (!world.isUp(id)) return `${id}: crashed`;
      const node = world.node(id);
      const others = world.ids
        .filter((other) => other !== id && node.liveness(other) !== 'alive')
        .map((other) => `${other} ${node.liveness(other)}`);
      const paused = world.nowMs < (this.pausedUntilMs.get(id) ?? 0) ? 'paused; ' : '';
      const sees = others.length === 0 ? 'sees all alive' : `sees ${others.join(', ')}`;
      return `${id}: ${paused}${sees}; hints ${node.clusterStatus().hintsTotal}`;
    });
  }

  /**
   * Calms the network and runs until every node sees every other alive and no hint is left.
   * It restarts nothing: a crashed node can never settle, so that fails at once.
   */
  private stabilize(timeoutMs: number): { result: string; stop: string | null } {
    const world = this.requireWorld();
    world.calmNetwork();
    const crashed = world.ids.filter((id) => !world.isUp(id));
    if (crashed.length > 0) {
      return { result: '', stop: `cannot settle while ${crashed.join(', ')} crashed` };
    }
    const beganMs = world.nowMs;
    if (world.waitSettled(timeoutMs)) {
      return { result: `settled after ${formatSeconds(world.nowMs - beganMs)}`, stop: null };
    }
    const unsettled = this.status().filter((line) => !line.endsWith('sees all alive; hints 0'));
    const reason = `not settled within ${formatSeconds(timeoutMs)}: ${unsettled.join('; ')}`;
    return { result: '', stop: reason };
  }

  private waitFor(state: Liveness, node: number, from: number | undefined, timeoutMs: number) {
    const world = this.requireWorld();
    const target = idOf(node);
    const beganMs = world.nowMs;
    const reached = world.runUntil(() => {
      const observers = this.observers(target, from);
      return (
        observers.length > 0 &&
        observers.every((observer) => world.node(observer).liveness(target) === state)
      );
    }, timeoutMs);
    if (reached) return { result: `after ${formatSeconds(world.nowMs - beganMs)}`, stop: null };
    const observers = this.observers(target, from);
    const wrong = this.viewsOtherThan(state, target, observers);
    const why = observers.length === 0 ? `no node that is up watches ${target}` : wrong.join(', ');
    return { result: '', stop: `after ${formatSeconds(timeoutMs)}: ${why}` };
  }

  /** The nodes that are up whose view of `target` counts: `from`, or every other one. */
  private observers(target: string, from: number | undefined): string[] {
    const world = this.requireWorld();
    const candidates = from === undefined ? world.ids.filter((id) => id !== target) : [idOf(from)];
    return candidates.filter((id) => world.isUp(id));
  }

  /** "n1 sees n3 suspect" for each observer that does not see `target` in `state`. */
  private viewsOtherThan(state: Liveness, target: string, observers: readonly string[]): string[] {
    const world = this.requireWorld();
    return observers
      .map((observer) => [observer, world.node(observer).liveness(target)] as const)
      .filter(([, seen]) => seen !== state)
      .map(([observer, seen]) => `${observer} sees ${target} ${seen}`);
  }

  private requireWorld(): ClusterWorld {
    assert(this.world !== null, 'the cluster exists');
    return this.world;
  }
}

function idOf(node: number): string {
  assert(Number.isInteger(node) && node >= 1, `node numbers start at 1: ${node}`);
  return `n${node}`;
}

function writeRequest(action: Extract<TranscriptAction, { kind: 'put' | 'del' }>): ClientRequest {
  const mutation =
    action.kind === 'put'
      ? {
          kind: 'set' as const,
          value: utf8(action.value),
          condition: 'always' as const,
          expiry: { kind: 'none' as const },
        }
      : { kind: 'delete' as const };
  return {
    op: 'write',
    keyspace: KEYSPACE,
    items: [{ key: utf8(action.key), mutation }],
    ...(action.w === undefined ? {} : { w: action.w }),
  };
}

function readRequest(key: string, r: QuorumSpec | undefined): ClientRequest {
  return { op: 'get', keyspace: KEYSPACE, keys: [utf8(key)], ...(r === undefined ? {} : { r }) };
}

function describeWrite(reply: ClientReply): string {
  if (!reply.ok) return reply.error.code;
  assert(reply.op === 'write', `a write is answered as a write, not ${reply.op}`);
  return 'ok';
}

function describeRead(reply: ClientReply): string {
  if (!reply.ok) return reply.error.code;
  const result = reply.op === 'get' ? reply.results[0] : undefined;
  assert(result !== undefined, 'a one-key read answers one result');
  const value = show(result.value === null ? null : fromUtf8(result.value));
  if (result.siblings.length <= 1) return value;
  const siblings = result.siblings.map((sibling) => show(fromUtf8(sibling.value)));
  return `${value} (siblings ${siblings.join(' ')})`;
}

function readValue(reply: ClientReply): string | null {
  const result = reply.ok && reply.op === 'get' ? reply.results[0] : undefined;
  assert(result !== undefined, 'a one-key read answers one result');
  return result.value === null ? null : fromUtf8(result.value);
}

function show(value: string | null): string {
  return value === null ? 'nil' : JSON.stringify(value);
}

/** Virtual milliseconds as seconds with three decimals: 1234 -> "1.234s". */
function formatSeconds(ms: number): string {
  return `${(ms / 1_000).toFixed(3)}s`;
}
