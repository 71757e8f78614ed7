#!/usr/bin/env node
// Runs a fixed usage scenario against a ChatarminOS server with the OFFICIAL @trpc/client.
//
//   node client-scenario.mjs --url http://127.0.0.1:PORT/api/v1 --api-key KEY \
//       --mode json|superjson --link http|batch [--run-id ID]
//
// Prints ONE JSON object (the results of every step; Dates as ISO strings) to stdout and
// exits 0; an unexpected error goes to stderr with exit code 1. Expected failures (the
// usage limit, an unknown feature) are recorded in the output, not raised.
// See README.md for the steps and the output format.

import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createTRPCUntypedClient, httpBatchLink, httpLink, TRPCClientError } from '@trpc/client';
import superjson from 'superjson';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    'api-key': { type: 'string' },
    mode: { type: 'string', default: 'json' },
    link: { type: 'string', default: 'http' },
    'run-id': { type: 'string' },
    'max-usage-calls': { type: 'string', default: '1000' },
  },
  strict: true,
});

function usage(msg) {
  process.stderr.write(
    `${msg}\nusage: node client-scenario.mjs --url URL --api-key KEY --mode json|superjson --link http|batch [--run-id ID]\n`,
  );
  process.exit(2);
}
if (!args.url) usage('--url is required');
if (!args['api-key']) usage('--api-key is required');
if (!['json', 'superjson'].includes(args.mode)) usage(`bad --mode ${args.mode}`);
if (!['http', 'batch'].includes(args.link)) usage(`bad --link ${args.link}`);
const MODE = args.mode;
const LINK = args.link;
const RUN_ID = args['run-id'] ?? randomUUID().slice(0, 8);
const MAX_USAGE_CALLS = Number.parseInt(args['max-usage-calls'], 10);

// Every HTTP request the links send, to show what was batched.
const httpLog = [];
const loggingFetch = (url, init) => {
  const u = new URL(url);
  httpLog.push({ method: init?.method ?? 'GET', path: u.pathname, batch: u.searchParams.get('batch') === '1' });
  return fetch(url, init);
};

const linkOptions = {
  url: args.url,
  headers: () => ({ Authorization: `Bearer ${args['api-key']}` }),
  fetch: loggingFetch,
  ...(MODE === 'superjson' ? { transformer: superjson } : {}),
};
const client = createTRPCUntypedClient({
  links: [LINK === 'batch' ? httpBatchLink(linkOptions) : httpLink(linkOptions)],
});

/** Dates -> ISO strings, recursively (superjson mode gives Date objects). */
function plain(value) {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value === undefined ? null : value;
}

function describeError(err) {
  if (!(err instanceof TRPCClientError)) throw err; // unexpected: not a tRPC error at all
  return {
    code: err.data?.code ?? null,
    httpStatus: err.data?.httpStatus ?? null,
    message: err.message,
    path: err.data?.path ?? null,
  };
}

/** Runs fn; a tRPC error becomes {ok: false, error}, anything else propagates. */
async function attempt(fn) {
  try {
    return { ok: true, result: plain(await fn()) };
  } catch (err) {
    return { ok: false, error: describeError(err) };
  }
}

function httpSince(start) {
  return httpLog.slice(start);
}

async function main() {
  const out = { mode: MODE, link: LINK, runId: RUN_ID };
  const externalOrgId = `org_scn_${MODE}_${LINK}`;

  // (a) onboard
  const onboard = plain(
    await client.mutation('onboard', {
      externalOrgId,
      label: 'Scenario',
      hints: { companyName: 'Scenario Inc', domain: `scenario-${MODE}-${LINK}.example` },
      tierCode: 'free',
      contactEmail: `founder@scenario-${MODE}-${LINK}.example`,
    }),
  );
  out.onboard = onboard;
  const companyId = onboard.companyId;

  // (b) features.check, sent together with billing.getStatus (one batch with --link batch,
  // two requests with --link http).
  let mark = httpLog.length;
  const [checkBefore, statusBefore] = await Promise.all([
    client.query('features.check', { companyId, featureCode: 'ai_credit' }),
    client.query('billing.getStatus', { companyId }),
  ]);
  out.checkBefore = plain(checkBefore);
  out.statusBefore = plain(statusBefore);
  out.checkBeforeHttp = httpSince(mark);

  // (c) trackUsage, quantity 1, until it fails
  const keyPrefix = `scn-${MODE}-${LINK}-${RUN_ID}`;
  const firstKey = `${keyPrefix}-1`;
  let succeeded = 0;
  let lastResult = null;
  let limitError = null;
  for (let i = 1; i <= MAX_USAGE_CALLS; i++) {
    try {
      lastResult = await client.mutation('billing.trackUsage', {
        companyId,
        featureCode: 'ai_credit',
        quantity: 1,
        idempotencyKey: `${keyPrefix}-${i}`,
      });
      succeeded += 1;
    } catch (err) {
      limitError = describeError(err);
      break;
    }
  }
  out.usage = {
    succeeded,
    firstIdempotencyKey: firstKey,
    lastResult: plain(lastResult),
    error: limitError, // null if it never failed within MAX_USAGE_CALLS
  };

  // (d) the first idempotency key again
  out.duplicate = await attempt(() =>
    client.mutation('billing.trackUsage', {
      companyId,
      featureCode: 'ai_credit',
      quantity: 1,
      idempotencyKey: firstKey,
    }),
  );

  // (e) features.check again
  out.checkAfter = plain(await client.query('features.check', { companyId, featureCode: 'ai_credit' }));

  // (f) a call that must fail
  out.unknownFeature = await attempt(() =>
    client.query('features.check', { companyId, featureCode: 'no_such_feature' }),
  );

  // (g) billing.getStatus
  out.status = plain(await client.query('billing.getStatus', { companyId }));

  out.httpRequestCount = httpLog.length;
  return out;
}

main().then(
  (out) => {
    process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
  },
  (err) => {
    process.stderr.write(`client-scenario failed: ${err?.stack ?? err}\n`);
    if (err instanceof TRPCClientError) {
      process.stderr.write(`tRPC error data: ${JSON.stringify(err.data ?? null)}\n`);
    }
    process.exit(1);
  },
);
