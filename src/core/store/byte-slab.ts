// Small byte strings cut from shared slabs, for encoded records that storage keeps a while
// (the LMDB engine's memtable holds them until its next checkpoint).
//
// Why: a Uint8Array of more than 64 bytes gets a backing store of its own outside the
// JavaScript heap, which costs about a microsecond to allocate, zero and later sweep: as much
// as the rest of a SET. A view into a slab costs what any small object does. A slab is freed
// once every view cut from it is gone, so a holder that keeps one small view pins the whole
// slab: only hand slab bytes to holders that drop them in bulk (the memtable at a
// checkpoint); the in-memory engine copies what it keeps.
//
// Rules: views are at most VIEW_BYTES_MAX (larger byte strings get their own buffer); a slab
// is never rewritten, only replaced when full, so a view stays valid for as long as it is held.

import { assert } from '../bytes.ts';
import { ByteWriter } from './byte-codec.ts';

const SLAB_BYTES = 64 * 1024;
/** Byte strings above this get a buffer of their own: a slab holds at least 16 views. */
export const VIEW_BYTES_MAX = 4 * 1024;
/** A scratch writer grown past this is dropped after use rather than kept. */
const SCRATCH_BYTES_KEPT_MAX = 64 * 1024;

export class ByteSlab {
  private slab = new ArrayBuffer(SLAB_BYTES);
  private used = 0;
  private scratchWriter = new ByteWriter(256);

  /**
   * A writer to encode one byte string into, emptied; hand what it wrote to `keep`. Only
   * one encoding at a time may use it.
   */
  scratch(): ByteWriter {
    return this.scratchWriter.reset();
  }

  /** A copy of `bytes` that storage may keep (a slab view when small). */
  keep(bytes: Uint8Array): Uint8Array {
    if (this.scratchWriter.capacity > SCRATCH_BYTES_KEPT_MAX) {
      this.scratchWriter = new ByteWriter(256);
    }
    if (bytes.length > VIEW_BYTES_MAX) return bytes.slice();
    if (this.used + bytes.length > SLAB_BYTES) {
      this.slab = new ArrayBuffer(SLAB_BYTES);
      this.used = 0;
    }
    const view = new Uint8Array(this.slab, this.used, bytes.length);
    view.set(bytes);
    this.used += bytes.length;
    assert(this.used <= SLAB_BYTES, 'a slab view fits in its slab');
    return view;
  }
}
