#!/usr/bin/env node
// Throughput of the OFFICIAL @trpc/client, for benchmarks/bench_batching.py (httpBatchLink)
// and benchmarks/bench_http_libs.py (`--link http`: httpLink, one request per call).
//
//   node bench-client.mjs --url http://127.0.0.1:PORT/api/v1 --api-key KEY \
//       --mode json|superjson --concurrent 100 --waves 20 [--link batch|http]
//
// Sends `waves` waves of `concurrent` features.check queries made at the same time (each
// wave awaited before the next) and prints ONE JSON object: {"calls": N, "seconds": S}.

import { parseArgs } from 'node:util';
import { createTRPCUntypedClient, httpBatchLink, httpLink } from '@trpc/client';
import superjson from 'superjson';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    'api-key': { type: 'string' },
    mode: { type: 'string', default: 'json' },
    concurrent: { type: 'string', default: '100' },
    waves: { type: 'string', default: '20' },
    link: { type: 'string', default: 'batch' },
  },
  strict: true,
});
const concurrent = Number.parseInt(args.concurrent, 10);
const waves = Number.parseInt(args.waves, 10);
if (args.link !== 'batch' && args.link !== 'http') throw new Error(`--link batch|http, got ${args.link}`);
const link = args.link === 'http' ? httpLink : httpBatchLink;
const client = createTRPCUntypedClient({
  links: [
    link({
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
