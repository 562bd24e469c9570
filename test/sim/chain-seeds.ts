// Seeds for the chain simulation tests: a default range, or CHAIN_SEEDS to replay one seed
// ("17") or run another range ("1..1000"), and the replay hint every failure carries.

export function chainSeeds(first: number, last: number): number[] {
  const chosen = process.env['CHAIN_SEEDS'];
  if (chosen !== undefined && chosen !== '') {
    const range = /^(\d+)\.\.(\d+)$/.exec(chosen);
    if (range !== null) return rangeOf(Number(range[1]), Number(range[2]));
    if (/^\d+$/.test(chosen)) return [Number(chosen)];
    throw new Error(`CHAIN_SEEDS must be a seed or a range a..b, not ${chosen}`);
  }
  return rangeOf(first, last);
}

function rangeOf(first: number, last: number): number[] {
  const seeds: number[] = [];
  for (let seed = first; seed <= last; seed++) seeds.push(seed);
  return seeds;
}

export function chainReplayHint(seed: number, testFile: string): string {
  return `seed ${seed} (replay: CHAIN_SEEDS=${seed} npx node --test test/sim/${testFile})`;
}
