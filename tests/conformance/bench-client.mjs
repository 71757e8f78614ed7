#!/usr/bin/env node
// Throughput of the OFFICIAL @trpc/client with httpBatchLink, for benchmarks/bench_batching.py.
//
//   node bench-client.mjs --url http://127.0.0.1:PORT/api/v1 --api-key KEY \
//       --mode json|superjson --concurrent 100 --waves 20
//
// Sends `waves` waves of `concurrent` features.check queries made at the same time (each
// wave awaited before the next) and prints ONE JSON object: {"calls": N, "seconds": S}.

import { parseArgs } from 'node:util';
import { createTRPCUntypedClient, httpBatchLink } from '@trpc/client';
import superjson from 'superjson';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    'api-key': { type: 'string' },
    mode: { type: 'string', default: 'json' },
    concurrent: { type: 'string', default: '100' },
    waves: { type: 'string', default: '20' },
  },
  strict: true,
});
const concurrent = Number.parseInt(args.concurrent, 10);
const waves = Number.parseInt(args.waves, 10);
const client = createTRPCUntypedClient({
  links: [
    httpBatchLink({
      url: args.url,
      headers: () => ({ Authorization: `Bearer ${args['api-key']}` }),
      ...(args.mode === 'superjson' ? { transformer: superjson } : {}),
    }),
  ],
});

async function wave(n) {
  const calls = [];
  for (let i = 0; i < concurrent; i++) {
    calls.push(client.query('features.check', { companyId: 'comp_1', featureCode: `f${n}_${i}` }));
  }
  await Promise.all(calls);
}

await wave(0); // warm up: connection, JIT
const started = process.hrtime.bigint();
for (let n = 0; n < waves; n++) await wave(n);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stdout.write(`${JSON.stringify({ calls: waves * concurrent, seconds })}\n`);
