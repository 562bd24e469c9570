// Prometheus metrics: counters and latency histograms, rendered in the text exposition
// format for /metrics. Label sets are few and fixed (protocol, operation, outcome), so the
// series count is bounded by the command table.

const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

type Labels = Readonly<Record<string, string>>;

function labelText(labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((name) => `${name}="${escapeLabel(labels[name]!)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** One series of a counter: the hot path holds it and adds to it directly. */
interface CounterSeries {
  value: number;
}

class Counter {
  private readonly series = new Map<string, CounterSeries>();
  readonly name: string;
  readonly help: string;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  increment(labels: Labels = {}, amount = 1): void {
    this.seriesOf(labelText(labels)).value += amount;
  }

  /** The series of a label text made by labelText, created at zero. */
  seriesOf(key: string): CounterSeries {
    let series = this.series.get(key);
    if (series === undefined) {
      series = { value: 0 };
      this.series.set(key, series);
    }
    return series;
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const [labels, series] of this.series) text += `${this.name}${labels} ${series.value}\n`;
    return text;
  }
}

class Gauge {
  private readonly series = new Map<string, () => number>();
  readonly name: string;
  readonly help: string;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  /** The value is read when metrics are rendered. */
  track(read: () => number, labels: Labels = {}): void {
    this.series.set(labelText(labels), read);
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`;
    for (const [labels, read] of this.series) text += `${this.name}${labels} ${read()}\n`;
    return text;
  }
}

/** One series of a histogram: the hot path holds it and records into it directly. */
interface HistogramSeries {
  readonly buckets: readonly number[];
  readonly bucketCounts: number[];
  count: number;
  sum: number;
}

function observeInto(series: HistogramSeries, value: number): void {
  const buckets = series.buckets;
  for (let i = 0; i < buckets.length; i++) {
    if (value <= buckets[i]!) {
      series.bucketCounts[i]! += 1;
      break;
    }
  }
  series.count += 1;
  series.sum += value;
}

class Histogram {
  private readonly series = new Map<string, HistogramSeries>();
  readonly name: string;
  readonly help: string;
  private readonly buckets: readonly number[];
  constructor(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    this.name = name;
    this.help = help;
    this.buckets = buckets;
  }

  observe(value: number, labels: Labels = {}): void {
    observeInto(this.seriesOf(labelText(labels)), value);
  }

  /** The series of a label text made by labelText, created empty. */
  seriesOf(key: string): HistogramSeries {
    let series = this.series.get(key);
    if (series === undefined) {
      series = {
        buckets: this.buckets,
        bucketCounts: new Array<number>(this.buckets.length).fill(0),
        count: 0,
        sum: 0,
      };
      this.series.set(key, series);
    }
    return series;
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const [labels, series] of this.series) {
      const inner = labels === '' ? '' : labels.slice(1, -1) + ',';
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += series.bucketCounts[i]!;
        text += `${this.name}_bucket{${inner}le="${this.buckets[i]}"} ${cumulative}\n`;
      }
      text += `${this.name}_bucket{${inner}le="+Inf"} ${series.count}\n`;
      text += `${this.name}_sum${labels} ${series.sum}\n`;
      text += `${this.name}_count${labels} ${series.count}\n`;
    }
    return text;
  }
}

/**
 * The request counters and latency histogram of one protocol and operation. A protocol
 * layer keeps it per command and records with no map lookup: per request, looking the
 * series up by label text cost five map operations. Each series appears in the output from
 * its first record on, as it did when looked up.
 */
export class RequestSeries {
  private readonly requests: Counter;
  private readonly requestSeconds: Histogram;
  private readonly keys: { readonly ok: string; readonly error: string; readonly timed: string };
  private ok: CounterSeries | null = null;
  private error: CounterSeries | null = null;
  private timed: HistogramSeries | null = null;

  constructor(requests: Counter, requestSeconds: Histogram, protocol: string, operation: string) {
    this.requests = requests;
    this.requestSeconds = requestSeconds;
    this.keys = {
      ok: labelText({ protocol, operation, outcome: 'ok' }),
      error: labelText({ protocol, operation, outcome: 'error' }),
      timed: labelText({ protocol, operation }),
    };
  }

  record(ok: boolean, seconds: number): void {
    if (ok) (this.ok ??= this.requests.seriesOf(this.keys.ok)).value += 1;
    else (this.error ??= this.requests.seriesOf(this.keys.error)).value += 1;
    observeInto((this.timed ??= this.requestSeconds.seriesOf(this.keys.timed)), seconds);
  }
}

/** All of a node's metrics. Protocol layers record through a RequestSeries. */
export class Metrics {
  readonly requests = new Counter(
    'ringkv_requests_total',
    'Client requests by protocol, operation and outcome.',
  );
  readonly requestSeconds = new Histogram(
    'ringkv_request_duration_seconds',
    'Client request latency by protocol and operation, from parse to reply.',
  );
  readonly commits = new Counter(
    'ringkv_storage_commits_total',
    'Storage commits (group commits).',
  );
  readonly commitWrites = new Counter(
    'ringkv_storage_commit_writes_total',
    'Storage writes carried by commits; divided by commits it is the group-commit batch size.',
  );
  readonly commitSeconds = new Histogram(
    'ringkv_storage_commit_duration_seconds',
    'Storage commit latency.',
  );
  readonly connections = new Gauge('ringkv_connections', 'Open client connections by protocol.');
  readonly peerMessagesSent = new Counter(
    'ringkv_peer_messages_sent_total',
    'Messages handed to the peer transport (before fault injection).',
  );
  readonly peerMessagesReceived = new Counter(
    'ringkv_peer_messages_received_total',
    'Messages received from peers and handed to the node.',
  );
  readonly gauges = new Gauge('ringkv_node_info', 'Node gauges.');

  /**
   * The series of each protocol and operation, by protocol, then operation, made once:
   * nested maps of the callers' constant strings need no key built per call.
   */
  private readonly requestSeriesMap = new Map<string, Map<string, RequestSeries>>();

  /** Where requests of one protocol and operation are counted and timed (see RequestSeries). */
  requestSeries(protocol: string, operation: string): RequestSeries {
    let byOperation = this.requestSeriesMap.get(protocol);
    if (byOperation === undefined) {
      byOperation = new Map();
      this.requestSeriesMap.set(protocol, byOperation);
    }
    let series = byOperation.get(operation);
    if (series === undefined) {
      series = new RequestSeries(this.requests, this.requestSeconds, protocol, operation);
      byOperation.set(operation, series);
    }
    return series;
  }

  observeRequest(protocol: string, operation: string, ok: boolean, seconds: number): void {
    this.requestSeries(protocol, operation).record(ok, seconds);
  }

  render(): string {
    return [
      this.requests,
      this.requestSeconds,
      this.commits,
      this.commitWrites,
      this.commitSeconds,
      this.connections,
      this.peerMessagesSent,
      this.peerMessagesReceived,
      this.gauges,
    ]
      .map((metric) => metric.render())
      .join('');
  }
}
