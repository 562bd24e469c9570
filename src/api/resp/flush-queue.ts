// The connections that have replies to write, flushed together at the end of the event
// loop's pass: after every socket that was ready has been read, the writes to all of them go
// out back to back, as Redis writes before it sleeps. The first write wakes the client; the
// others find it awake, which on a virtual machine saves an inter-processor wake-up per
// reply (bench:single at -P 1: about 25% more SETs and 40% more GETs than writing each
// reply as its read ends). One queue per server, not one timer per connection: at -P 1 a
// pass reads a command from each of dozens of connections, and each timer costs as much as
// the rest of a GET's own work in the shell.

export class FlushQueue {
  private queued: (() => void)[] = [];
  private scheduled = false;

  /** Runs `flush` at the end of this pass (each connection adds itself once per pass). */
  add(flush: () => void): void {
    this.queued.push(flush);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    const queued = this.queued;
    this.queued = [];
    this.scheduled = false;
    // A flush that adds its connection again (more to write) runs in the next pass.
    for (const flush of queued) flush();
  };
}
