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

class Counter {
  private readonly series = new Map<string, number>();
  readonly name: string;
  readonly help: string;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  increment(labels: Labels = {}, amount = 1): void {
    this.incrementSeries(labelText(labels), amount);
  }

  /** The hot path: `series` is a label text made once by labelText. */
  incrementSeries(series: string, amount = 1): void {
    this.series.set(series, (this.series.get(series) ?? 0) + amount);
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const [labels, value] of this.series) text += `${this.name}${labels} ${value}\n`;
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

interface HistogramSeries {
  readonly bucketCounts: number[];
  count: number;
  sum: number;
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
    this.observeSeries(value, labelText(labels));
  }

  /** The hot path: `key` is a label text made once by labelText. */
  observeSeries(value: number, key: string): void {
    let series = this.series.get(key);
    if (series === undefined) {
      series = { bucketCounts: new Array<number>(this.buckets.length).fill(0), count: 0, sum: 0 };
      this.series.set(key, series);
    }
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]!) {
        series.bucketCounts[i]! += 1;
        break;
      }
    }
    series.count += 1;
    series.sum += value;
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

/** All of a node's metrics. Protocol layers record through `observeRequest`. */
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
   * Label texts by protocol, then operation: [error series, ok series, timed series], made
   * once. This runs per request: nested maps of the callers' constant strings need no key
   * built per call.
   */
  private readonly requestSeries = new Map<string, Map<string, [string, string, string]>>();

  observeRequest(protocol: string, operation: string, ok: boolean, seconds: number): void {
    let byOperation = this.requestSeries.get(protocol);
    if (byOperation === undefined) {
      byOperation = new Map();
      this.requestSeries.set(protocol, byOperation);
    }
    let series = byOperation.get(operation);
    if (series === undefined) {
      series = [
        labelText({ protocol, operation, outcome: 'error' }),
        labelText({ protocol, operation, outcome: 'ok' }),
        labelText({ protocol, operation }),
      ];
      byOperation.set(operation, series);
    }
    this.requests.incrementSeries(ok ? series[1] : series[0]);
    this.requestSeconds.observeSeries(seconds, series[2]);
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
