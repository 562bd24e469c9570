// The TypeScript client of ringkv: `RingkvClient.connect({ endpoints })`, then get, put,
// delete and scan, routed to a replica of each key. docs/CLIENT.md has the usage and the
// retry policy.

export {
  RingkvClient,
  type BytesLike,
  type ConnectOptions,
  type DeleteOptions,
  type GetOptions,
  type GetResult,
  type PutOptions,
  type Quorum,
  type ScanOptions,
  type ScanPage,
  type Sibling,
  type Transport,
} from './client.ts';
export {
  ClientErrorCode,
  RingkvError,
  UNKNOWN_KEYSPACE_CODE,
  isRingkvError,
  type RingkvErrorDetails,
} from './errors.ts';
export {
  parseRingDocument,
  RingView,
  type Liveness,
  type RingDocument,
  type RingKeyspace,
  type RingNode,
} from './ring-view.ts';
