// A one-line progress display on stderr: operations done, the rate, and the share done when
// the phase has a fixed size. Shown only when stderr is a terminal; in a pipe or a log file
// it stays quiet so that output meant for machines is not interleaved with it.

import type { Progress } from './run-load.ts';

export interface ProgressLine {
  readonly update: (progress: Progress) => void;
  /** Clears the line; call once when the run ends. */
  readonly finish: () => void;
}

export function formatProgress(progress: Progress): string {
  const seconds = progress.elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(progress.done / seconds) : 0;
  const share =
    progress.total === null || progress.total === 0
      ? ''
      : ` (${Math.floor((progress.done * 100) / progress.total)}%)`;
  const of = progress.total === null ? '' : `/${progress.total}`;
  return `${progress.phase}: ${progress.done}${of} ops${share}, ${rate} ops/s, ${seconds.toFixed(1)} s`;
}

export function progressLine(stream: NodeJS.WriteStream = process.stderr): ProgressLine {
  if (stream.isTTY !== true) return { update: () => {}, finish: () => {} };
  let shown = false;
  return {
    update: (progress) => {
      shown = true;
      stream.write(`\r\x1b[2K${formatProgress(progress)}`);
    },
    finish: () => {
      if (shown) stream.write('\r\x1b[2K');
      shown = false;
    },
  };
}
