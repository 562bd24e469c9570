// The write-ahead log: every committed batch is appended here as one frame before anything
// else happens to it, so a durable commit costs one sequential write and one fdatasync of a
// preallocated file, instead of the sync of every B-tree page the batch touched.
//
// Files. The log is a chain of segment files (frame.ts has the layout), each SEGMENT_BYTES
// long and zero-filled ahead of use: overwriting allocated blocks lets fdatasync skip the
// file-system journal. A segment whose frames the engine has checkpointed is recycled as a
// spare rather than deleted.
//
// One writer. Appends queue frames in memory; a single loop writes whatever has queued in
// one writev, then syncs once if any of those frames is durable (group commit), so frames
// reach the disk in sequence order. When everything written to the segment before is
// already on disk, a durable group goes out through a second descriptor opened with
// O_DSYNC instead: written and synced in one call, one trip to the I/O thread pool instead
// of two (each trip costs tens of microseconds of CPU in wake-ups). A group with no durable
// frame is written synchronously: a copy into the page cache costs less than the trip. So
// is a durable group whose every frame asked to sync inline (the caller blocks for the
// sync, and spares the trip's wake-ups; docs/STORAGE.md says when the shell asks). Any
// I/O error fails the log for good: the engine stops rather than guess what reached the
// disk.
//
// Recovery reads every segment, orders them by first sequence, and follows the chain of
// frames from the first one it needs, stopping at the first frame that is missing, torn,
// or fails its CRC. Writing then resumes in a fresh segment, never after the stop, so a
// stale frame beyond it can never be read as part of the log.

import { randomInt } from 'node:crypto';
import {
  constants as fsConstants,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writevSync,
} from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { StorageWrite } from '../contract.ts';
import {
  checkFrame,
  decodeWrites,
  decodeSegmentHeader,
  encodeFrame,
  encodeSegmentHeader,
  resaltFrame,
  SEGMENT_HEADER_BYTES,
} from './frame.ts';

export interface WalOptions {
  /** Bytes of each segment file. A frame larger than this gets a segment to itself. */
  readonly segmentBytes: number;
  /** Spare segments kept for reuse; segments freed beyond these are deleted. */
  readonly sparesMax: number;
}

export const DEFAULT_WAL_OPTIONS: WalOptions = {
  segmentBytes: 32 * 1024 * 1024,
  sparesMax: 2,
};

/**
 * A batch read back from the log at open. Its keys and values are views into the segment
 * file's bytes as read: a holder that keeps one past applying it pins the whole file, so
 * copy what is kept.
 */
export interface RecoveredBatch {
  readonly seq: number;
  readonly writes: readonly StorageWrite[];
}

/**
 * A recovered frame, checked at open and decoded each time its writes are asked for. Why:
 * decoded all at once, the batches of a whole log lived until the last was applied, and
 * the collector copied them into the old generation, about a fifth of a restart's time.
 */
class RecoveredFrame implements RecoveredBatch {
  readonly seq: number;
  private readonly bytes: Buffer;
  private readonly offset: number;

  constructor(seq: number, bytes: Buffer, offset: number) {
    this.seq = seq;
    this.bytes = bytes;
    this.offset = offset;
  }

  get writes(): StorageWrite[] {
    return decodeWrites(this.bytes, this.offset);
  }
}

interface Segment {
  /** Open while the segment takes frames; null for a segment recovered at open. */
  readonly file: FileHandle | null;
  /** The same file opened with O_DSYNC: a write through it returns once on disk. */
  readonly syncedFile: FileHandle | null;
  /** Bytes were written through `file` and not synced since. */
  unsynced: boolean;
  readonly fileName: string;
  salt: number;
  firstSeq: number;
  /** Sequence of the last frame written to it (firstSeq - 1 while empty). */
  lastSeq: number;
  /** Where the next frame goes. */
  writeOffset: number;
}

interface QueuedFrame {
  readonly seq: number;
  readonly bytes: Buffer;
  /** The salt the frame was signed with: the current segment's when it was appended. */
  readonly salt: number;
  readonly durable: boolean;
  /**
   * Written and synced on the calling thread if every frame written with it asks too (see
   * append).
   */
  readonly syncInline: boolean;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

const SEGMENT_FILE = /^segment-(\d+)\.wal$/;
const ZERO_CHUNK_BYTES = 1024 * 1024;

export class WriteAheadLog {
  private readonly dir: string;
  private readonly options: WalOptions;
  /** Segments in the chain, oldest first; the last one takes new frames. */
  private readonly segments: Segment[] = [];
  private readonly spares: string[] = [];
  private spareInProgress: Promise<void> | null = null;
  private nextFileNumber: number;
  private lastAssignedSeq: number;
  private queue: QueuedFrame[] = [];
  private writing = false;
  private failure: Error | null = null;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};

  private constructor(dir: string, options: WalOptions, lastSeq: number, nextFileNumber: number) {
    this.dir = dir;
    this.options = options;
    this.lastAssignedSeq = lastSeq;
    this.nextFileNumber = nextFileNumber;
  }

  /**
   * Opens (or creates) the log in `dir` and returns the batches after `afterSeq`, the last
   * sequence the caller already holds elsewhere (its checkpoint).
   */
  static async open(
    dir: string,
    afterSeq: number,
    options: WalOptions = DEFAULT_WAL_OPTIONS,
  ): Promise<{ log: WriteAheadLog; recovered: RecoveredBatch[] }> {
    mkdirSync(dir, { recursive: true });
    const found = readSegments(dir, afterSeq);
    const recovered: RecoveredBatch[] = [];
    const chain: FoundSegment[] = [];
    const spares: FoundSegment[] = [];
    const beyondGap: FoundSegment[] = [];
    let expected = afterSeq + 1;
    for (const segment of found) {
      const lastSeq =
        segment.header === null ? -1 : segment.header.firstSeq + segment.frameCount - 1;
      if (segment.header === null || lastSeq < expected) {
        // Never used, or every frame in it is already held by the caller.
        spares.push(segment);
      } else if (segment.header.firstSeq > expected || beyondGap.length > 0) {
        // A gap: frames after it were lost with the crash, and must never be replayed.
        beyondGap.push(segment);
      } else {
        for (const frame of segment.frames) {
          if (frame.seq < expected) continue;
          recovered.push(frame);
          expected = frame.seq + 1;
        }
        chain.push(segment);
      }
    }
    const lastSeq = expected - 1;
    const fileNumbers = found.map((segment) => segment.fileNumber);
    const log = new WriteAheadLog(dir, options, lastSeq, Math.max(0, ...fileNumbers) + 1);
    for (const segment of beyondGap) rmSync(path.join(dir, segment.fileName));
    if (beyondGap.length > 0) syncDirectory(dir);
    for (const segment of spares) log.freeSegmentFile(segment.fileName);
    // The replayed segments stay in the chain until the caller checkpoints their batches.
    // Writing resumes in a fresh segment, never after where reading stopped.
    for (const segment of chain) {
      log.segments.push({
        file: null,
        syncedFile: null,
        unsynced: false,
        fileName: segment.fileName,
        salt: segment.header!.salt,
        firstSeq: segment.header!.firstSeq,
        lastSeq: segment.header!.firstSeq + segment.frameCount - 1,
        writeOffset: 0,
      });
    }
    await log.startSegment(lastSeq + 1);
    return { log, recovered };
  }

  /** Bytes of frames appended since the log was opened. */
  bytesAppended = 0;

  /** The sequence of the last frame appended. */
  get lastSeq(): number {
    return this.lastAssignedSeq;
  }

  /**
   * Appends a batch and returns its sequence number and a promise that resolves once the
   * frame is written (and synced to disk, if `durable`). With `syncInline`, a durable frame
   * that finds the writer idle and the segment synced is written through the O_DSYNC
   * descriptor on the calling thread, before append returns: the caller blocks for the
   * sync instead of waiting for the I/O pool's thread to take it and report back.
   */
  append(
    writes: readonly StorageWrite[],
    durable: boolean,
    syncInline = false,
  ): { seq: number; done: Promise<void> } {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new Error('the write-ahead log is closed');
    const seq = ++this.lastAssignedSeq;
    // Encoded now, so the caller's arrays are copied before it can reuse them.
    const salt = this.segments[this.segments.length - 1]!.salt;
    const bytes = encodeFrame(seq, salt, writes);
    this.bytesAppended += bytes.length;
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const done = new Promise<void>((onResolve, onReject) => {
      resolve = onResolve;
      reject = onReject;
    });
    this.queue.push({ seq, bytes, salt, durable, syncInline, resolve, reject });
    if (!this.writing) void this.writeLoop();
    return { seq, done };
  }

  /**
   * Frees the segments whose frames all have sequence ≤ `seq`: the caller holds them
   * durably elsewhere now.
   */
  release(seq: number): void {
    while (this.segments.length > 1 && this.segments[0]!.lastSeq <= seq) {
      const segment = this.segments.shift()!;
      void closeSegmentFiles(segment).then(
        () => this.freeSegmentFile(segment.fileName),
        (error: unknown) => this.fail(error),
      );
    }
  }

  /** Waits for every queued frame to be written and synced, then closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.idle;
    await this.spareInProgress?.catch(() => {});
    const current = this.segments[this.segments.length - 1];
    const file = current?.file ?? null;
    if (file !== null && this.failure === null) await file.datasync();
    for (const segment of this.segments) await closeSegmentFiles(segment);
    this.segments.length = 0;
  }

  /** The segment files of the chain and the spares (for tests and status). */
  files(): { chain: string[]; spares: string[] } {
    return {
      chain: this.segments.map((segment) => segment.fileName),
      spares: [...this.spares],
    };
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    this.idle = new Promise((resolve) => (this.markIdle = resolve));
    try {
      while (this.queue.length > 0 && this.failure === null) {
        const frames = this.queue;
        this.queue = [];
        await this.writeFrames(frames);
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.writing = false;
      this.markIdle();
    }
  }

  private async writeFrames(frames: readonly QueuedFrame[]): Promise<void> {
    let segment = this.currentSegment();
    let buffers: Buffer[] = [];
    let bufferedFrom = segment.writeOffset;
    let syncNeeded = false;
    try {
      for (const frame of frames) {
        const bytes = frame.bytes;
        if (frame.salt !== segment.salt) resaltFrame(bytes, segment.salt);
        const empty = segment.lastSeq < segment.firstSeq;
        if (!empty && segment.writeOffset + bytes.length > this.options.segmentBytes) {
          // The frame does not fit: finish this segment (synced, so the chain never has a
          // hole before a later durable frame) and go on in the next.
          await writeAll(segment.file!, buffers, bufferedFrom);
          await segment.file!.datasync();
          segment.unsynced = false;
          segment = await this.startSegment(frame.seq);
          buffers = [];
          bufferedFrom = segment.writeOffset;
          resaltFrame(bytes, segment.salt);
        }
        buffers.push(bytes);
        segment.writeOffset += bytes.length;
        segment.lastSeq = frame.seq;
        if (frame.durable) syncNeeded = true;
      }
      if (syncNeeded && !segment.unsynced && frames.every((frame) => frame.syncInline)) {
        writeAllNow(segment.syncedFile!.fd, buffers, bufferedFrom);
      } else if (syncNeeded && !segment.unsynced) {
        await writeAll(segment.syncedFile!, buffers, bufferedFrom);
      } else if (syncNeeded) {
        await writeAll(segment.file!, buffers, bufferedFrom);
        await segment.file!.datasync();
        segment.unsynced = false;
      } else if (buffers.length > 0) {
        // Nothing to wait for on the disk: a copy into the page cache, done here rather
        // than through the thread pool, whose round trip costs several times the copy.
        writeAllNow(segment.file!.fd, buffers, bufferedFrom);
        segment.unsynced = true;
      }
    } catch (error) {
      const failure = asError(error);
      for (const frame of frames) frame.reject(failure);
      throw failure;
    }
    for (const frame of frames) frame.resolve();
    if (
      this.spares.length === 0 &&
      this.spareInProgress === null &&
      segment.writeOffset > this.options.segmentBytes / 2
    ) {
      this.prepareSpare();
    }
  }

  private currentSegment(): Segment {
    const segment = this.segments[this.segments.length - 1];
    if (segment === undefined || segment.file === null)
      throw new Error('the write-ahead log has no open segment');
    return segment;
  }

  /** Makes a segment whose first frame will be `firstSeq` the end of the chain. */
  private async startSegment(firstSeq: number): Promise<Segment> {
    if (this.spares.length === 0) {
      if (this.spareInProgress === null) this.prepareSpare();
      await this.spareInProgress;
    }
    const fileName = this.spares.shift()!;
    const file = await openFile(path.join(this.dir, fileName), 'r+');
    const syncedFile = await openFile(
      path.join(this.dir, fileName),
      fsConstants.O_RDWR | fsConstants.O_DSYNC,
    );
    const salt = randomInt(2 ** 32 - 1);
    const header = encodeSegmentHeader({ salt, firstSeq });
    // The header goes down with the first frames' sync; until then the file still holds the
    // old header, whose frames are all checkpointed, so a crash reads it as empty of news.
    await file.write(header, 0, header.length, 0);
    const segment: Segment = {
      file,
      syncedFile,
      // The header is not on disk yet.
      unsynced: true,
      fileName,
      salt,
      firstSeq,
      lastSeq: firstSeq - 1,
      writeOffset: SEGMENT_HEADER_BYTES,
    };
    this.segments.push(segment);
    return segment;
  }

  /** Creates and zero-fills a new spare segment file in the background. */
  private prepareSpare(): void {
    const fileName = `segment-${String(this.nextFileNumber++).padStart(10, '0')}.wal`;
    const filePath = path.join(this.dir, fileName);
    this.spareInProgress = (async () => {
      const file = await openFile(filePath, 'wx');
      try {
        const zeros = Buffer.alloc(Math.min(ZERO_CHUNK_BYTES, this.options.segmentBytes));
        for (let offset = 0; offset < this.options.segmentBytes; offset += zeros.length) {
          const length = Math.min(zeros.length, this.options.segmentBytes - offset);
          await file.write(zeros, 0, length, offset);
        }
        await file.sync();
      } finally {
        await file.close();
      }
      syncDirectory(this.dir);
      this.spares.push(fileName);
    })().then(
      () => {
        this.spareInProgress = null;
      },
      (error: unknown) => {
        this.spareInProgress = null;
        this.fail(error);
      },
    );
  }

  private freeSegmentFile(fileName: string): void {
    if (this.spares.length < this.options.sparesMax && !this.closed) this.spares.push(fileName);
    else rmSync(path.join(this.dir, fileName), { force: true });
  }

  private fail(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = new Error(`write-ahead log failed: ${asError(error).message}`);
    const queued = this.queue;
    this.queue = [];
    for (const frame of queued) frame.reject(this.failure);
  }
}

interface FoundSegment {
  readonly fileName: string;
  readonly fileNumber: number;
  readonly header: ReturnType<typeof decodeSegmentHeader>;
  /** Frames from the header on, up to the first one missing, torn or failing its CRC. */
  readonly frameCount: number;
  /** Those of them after `afterSeq`: the others are held elsewhere and not kept. */
  readonly frames: RecoveredBatch[];
}

/**
 * The segment files in `dir`, in chain order. Recovered batches are views into the files'
 * bytes as read, not copies: they are applied at open and then dropped. Copying each key
 * and value, two buffers per write over every frame of every file, spares included, took
 * about a tenth of a restart with 97 MB of log (docs/STORAGE.md). Frames up to `afterSeq`
 * are checked and counted only.
 */
function readSegments(dir: string, afterSeq: number): FoundSegment[] {
  const found: FoundSegment[] = [];
  for (const fileName of readdirSync(dir)) {
    const match = SEGMENT_FILE.exec(fileName);
    if (match === null) continue;
    const bytes = readFileSync(path.join(dir, fileName));
    const header = decodeSegmentHeader(bytes);
    const frames: RecoveredBatch[] = [];
    let frameCount = 0;
    let offset = SEGMENT_HEADER_BYTES;
    if (header !== null) {
      for (;;) {
        const seq = header.firstSeq + frameCount;
        const end = checkFrame(bytes, offset, header.salt, seq);
        if (end === null) break;
        frameCount++;
        if (seq > afterSeq) frames.push(new RecoveredFrame(seq, bytes, offset));
        offset = end;
      }
    }
    found.push({ fileName, fileNumber: Number(match[1]), header, frameCount, frames });
  }
  // Chain order; files without a header (never used) go last.
  return found.sort((a, b) => (a.header?.firstSeq ?? Infinity) - (b.header?.firstSeq ?? Infinity));
}

async function closeSegmentFiles(segment: Segment): Promise<void> {
  await segment.file?.close();
  await segment.syncedFile?.close();
}

async function writeAll(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  if (buffers.length === 0) return;
  let offset = position;
  let pending = buffers;
  while (pending.length > 0) {
    const { bytesWritten } = await file.writev(pending, offset);
    offset += bytesWritten;
    pending = skipBytes(pending, bytesWritten);
  }
}

function writeAllNow(fd: number, buffers: Buffer[], position: number): void {
  let offset = position;
  let pending = buffers;
  while (pending.length > 0) {
    const written = writevSync(fd, pending, offset);
    offset += written;
    pending = skipBytes(pending, written);
  }
}

/** The buffers that remain after the first `count` bytes were written. */
function skipBytes(buffers: Buffer[], count: number): Buffer[] {
  let remaining = count;
  let index = 0;
  while (index < buffers.length && remaining >= buffers[index]!.length) {
    remaining -= buffers[index]!.length;
    index++;
  }
  const rest = buffers.slice(index);
  if (rest.length > 0 && remaining > 0) rest[0] = rest[0]!.subarray(remaining);
  return rest;
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
