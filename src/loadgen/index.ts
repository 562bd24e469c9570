// The load generator's public surface: workloads, the runner, the histogram and the
// targets. Benchmarks and `ringkv bench` import from here.

export { Histogram, HISTOGRAM_VALUE_MAX, type LatencySummary } from './histogram.ts';
export { keyChooser, ZipfianChooser, UniformChooser, type KeyDistribution } from './key-chooser.ts';
export {
  longestSilence,
  measureOutage,
  type OutageOptions,
  type OutageResult,
  type Silence,
} from './outage.ts';
export { formatProgress, progressLine, type ProgressLine } from './progress.ts';
export {
  CONCURRENCY_MAX,
  errorKind,
  runLoad,
  type CasCheck,
  type LoadOptions,
  type LoadResult,
  type PhaseResult,
  type Progress,
} from './run-load.ts';
export {
  DEFAULT_ENDPOINTS,
  openTarget,
  TARGET_KINDS,
  type TargetKind,
  type TargetOptions,
} from './targets/open-target.ts';
export {
  formatEndpoint,
  parseEndpoints,
  type Endpoint,
  type LoadTarget,
  type VersionedValue,
} from './targets/target.ts';
export {
  CAS_ATTEMPTS_MAX,
  counterKeyName,
  keyName,
  makeValue,
  READ_FRACTION,
  WORKLOAD_NAMES,
  type WorkloadName,
  type WorkloadSpec,
} from './workload.ts';
