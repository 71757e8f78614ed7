#!/usr/bin/env node
// Reference tRPC v11 server for the chatarmin_os SDK conformance tests.
//
//   node server.mjs --mode json|superjson [--port 0] [--host 127.0.0.1]
//                   [--max-batch N] [--no-batching]
//
// Serves every procedure of the ChatarminOS API under /api/v1 with strict zod input
// schemas, canned outputs (outputs.json, or set per path with POST /__output), error
// injection (`error:CODE` in companyId / externalOrgId / tierCode) and a recording of every
// call (GET /__calls, GET /__requests, POST /__reset). See README.md.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { initTRPC, TRPCError } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import superjson from 'superjson';
import { z } from 'zod';

// ---------------------------------------------------------------------------------
// CLI
const { values: args } = parseArgs({
  options: {
    mode: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'max-batch': { type: 'string' },
    'no-batching': { type: 'boolean', default: false },
  },
  strict: true,
});
if (args.mode !== 'json' && args.mode !== 'superjson') {
  process.stderr.write('usage: node server.mjs --mode json|superjson [--port 0] [--host 127.0.0.1]\n');
  process.exit(2);
}
const MODE = args.mode;
const PORT = Number.parseInt(args.port, 10);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  process.stderr.write(`invalid --port ${args.port}\n`);
  process.exit(2);
}
const HOST = args.host;
const MAX_BATCH = args['max-batch'] === undefined ? undefined : Number.parseInt(args['max-batch'], 10);
if (MAX_BATCH !== undefined && !(MAX_BATCH >= 1)) {
  process.stderr.write(`invalid --max-batch ${args['max-batch']}\n`);
  process.exit(2);
}
const PREFIX = '/api/v1';

// ---------------------------------------------------------------------------------
// Canned outputs
const OUTPUTS = JSON.parse(readFileSync(new URL('./outputs.json', import.meta.url), 'utf8'));
const TIMESTAMP_FIELDS = new Set(['createdAt', 'updatedAt', 'validUntil', 'currentPeriodEnd']);

/** Deep copy of a canned output; in superjson mode timestamp fields become Dates. */
function materialise(value, key = undefined) {
  if (Array.isArray(value)) return value.map((v) => materialise(v));
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = materialise(v, k);
    return out;
  }
  if (MODE === 'superjson' && typeof value === 'string' && key !== undefined && TIMESTAMP_FIELDS.has(key)) {
    return new Date(value);
  }
  return value;
}

/** Canned outputs set with POST /__output {path, output}, until POST /__reset. */
const overrides = new Map();

function output(path) {
  if (overrides.has(path)) return materialise(overrides.get(path));
  if (!(path in OUTPUTS)) throw new Error(`outputs.json has no entry for ${path}`);
  return materialise(OUTPUTS[path]);
}

// ---------------------------------------------------------------------------------
// Recording
/** Records of procedure calls (one per call; a batch gives one per call). */
const calls = [];
/** Every raw HTTP request that reached /api/v1 (also the ones rejected before a procedure ran). */
const requests = [];

/** Parsed input -> plain JSON: Date -> {"$date": iso}, undefined -> null at top level. */
function toPlain(value) {
  if (value === undefined) return null;
  if (value instanceof Date) {
    return { $date: Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString() };
  }
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : toPlain(v)));
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue; // JSON has no undefined: the key is left out
      out[k] = toPlain(v);
    }
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

// ---------------------------------------------------------------------------------
// tRPC
const t = MODE === 'superjson' ? initTRPC.context().create({ transformer: superjson }) : initTRPC.context().create();

/** Every code @trpc/server v11 knows (TRPC_ERROR_CODES_BY_KEY). */
const TRPC_CODES = new Set([
  'PARSE_ERROR', 'BAD_REQUEST', 'UNAUTHORIZED', 'PAYMENT_REQUIRED', 'FORBIDDEN', 'NOT_FOUND',
  'METHOD_NOT_SUPPORTED', 'TIMEOUT', 'CONFLICT', 'PRECONDITION_FAILED', 'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE', 'UNPROCESSABLE_CONTENT', 'PRECONDITION_REQUIRED', 'TOO_MANY_REQUESTS',
  'CLIENT_CLOSED_REQUEST', 'INTERNAL_SERVER_ERROR', 'NOT_IMPLEMENTED', 'BAD_GATEWAY',
  'SERVICE_UNAVAILABLE', 'GATEWAY_TIMEOUT',
]);

const authMiddleware = t.middleware(({ ctx, next }) => {
  const auth = ctx.raw?.authorization;
  if (typeof auth !== 'string' || !auth.startsWith('Bearer os_sk_')) {
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing or invalid API key' });
  }
  return next();
});

/** Runs after input parsing: records the call, then applies error injection. */
const recordMiddleware = t.middleware(({ ctx, path, type, input, next }) => {
  calls.push({ path, type, input: toPlain(input), request: ctx.raw });
  if (input !== null && typeof input === 'object') {
    for (const field of ['companyId', 'externalOrgId', 'tierCode']) {
      const v = input[field];
      if (typeof v === 'string' && v.startsWith('error:')) {
        const code = v.slice('error:'.length);
        if (!TRPC_CODES.has(code)) {
          throw new TRPCError({ code: 'BAD_REQUEST', message: `unknown injected error code ${code}` });
        }
        throw new TRPCError({ code, message: `injected ${code}` });
      }
    }
  }
  return next();
});

/** Every procedure: auth first (before input parsing), then input, then recording. */
const protectedProcedure = t.procedure.use(authMiddleware);

function q(path, schema, resolve = () => output(path)) {
  const base = schema ? protectedProcedure.input(schema) : protectedProcedure;
  return base.use(recordMiddleware).query(({ input }) => resolve(input));
}
function m(path, schema, resolve = () => output(path)) {
  const base = schema ? protectedProcedure.input(schema) : protectedProcedure;
  return base.use(recordMiddleware).mutation(({ input }) => resolve(input));
}

// ---------------------------------------------------------------------------------
// Schemas (strict everywhere)
const id = z.string().min(1);
const ts = MODE === 'superjson' ? z.date() : z.iso.datetime({ offset: true });
const freeMap = z.record(z.string(), z.unknown());
const count = z.number().int().min(0);

const hints = z.strictObject({
  companyName: z.string().optional(),
  domain: z.string().optional(),
  emails: z.array(z.string()).optional(),
});

const contactFields = {
  email: z.string().min(1),
  name: z.string().optional(),
  role: z.string().optional(),
  isPrimary: z.boolean().optional(),
  avatarUrl: z.string().optional(),
  metadata: freeMap.optional(),
};
const contactInput = z.strictObject(contactFields);

const S = {
  'companies.getByProductLink': z.strictObject({ externalOrgId: id }),
  'companies.create': z.strictObject({
    name: z.string().min(1),
    domain: z.string().optional(),
    externalOrgId: id.optional(),
    label: z.string().optional(),
    contactEmail: z.string().min(1).optional(),
    contactName: z.string().optional(),
    createdAt: ts.optional(),
  }),
  'companies.update': z.strictObject({
    companyId: id,
    name: z.string().min(1).optional(),
    domain: z.string().optional(),
    createdAt: ts.optional(),
  }),
  'companies.smartLink': z.strictObject({
    externalOrgId: id,
    label: z.string(),
    hints: hints.optional(),
    minConfidence: z.number().min(0).max(1).optional(),
  }),
  'contacts.create': z.strictObject({ companyId: id, ...contactFields }),
  'contacts.bulkUpsert': z.strictObject({
    companyId: id,
    contacts: z.array(contactInput).min(1).max(1000),
  }),
  'contacts.list': z.strictObject({ companyId: id, primaryOnly: z.boolean().optional() }),
  'features.check': z.strictObject({ companyId: id, featureCode: id }),
  'features.listAccess': z.strictObject({ companyId: id }),
  'features.setAccess': z
    .strictObject({
      companyId: id.optional(),
      externalOrgId: id.optional(),
      featureCode: id,
      isEnabled: z.boolean().optional(),
      quantityLimit: count.nullable().optional(),
      includedQuantity: count.nullable().optional(),
      config: freeMap.optional(),
      source: z.enum(['subscription', 'manual', 'trial', 'api']).optional(),
      validUntil: ts.nullable().optional(),
    })
    .refine((v) => (v.companyId === undefined) !== (v.externalOrgId === undefined), {
      message: 'Provide exactly one of companyId or externalOrgId',
    }),
  'features.getAccessByExternalOrgId': z.strictObject({ externalOrgId: id }),
  'features.checkByExternalOrgId': z.strictObject({ externalOrgId: id, featureCode: id }),
  'billing.trackUsage': z.strictObject({
    companyId: id,
    featureCode: id,
    quantity: z.number().int().min(1),
    idempotencyKey: z.string().min(1).optional(),
    metadata: freeMap.optional(),
  }),
  'billing.claimCheckout': z.strictObject({ companyId: id, checkoutSessionId: id }),
  'billing.linkSubscription': z.strictObject({
    companyId: id,
    stripeSubscriptionId: id,
    stripeCustomerId: id.optional(),
    tierCode: id.optional(),
    displayName: z.string().optional(),
  }),
  'billing.getStatus': z.strictObject({ companyId: id }),
  'tiers.get': z.strictObject({ tierCode: id }),
  'tiers.applyTier': z.strictObject({
    tierCode: id,
    companyId: id,
    features: z.record(z.string(), freeMap).optional(),
  }),
  'links.create': z.strictObject({
    companyId: id,
    externalOrgId: id,
    label: z.string().optional(),
    externalUserId: z.string().optional(),
  }),
  'links.reset': z.strictObject({
    deleteContacts: z.boolean().optional(),
    resetMrr: z.boolean().optional(),
  }),
  onboard: z.strictObject({
    externalOrgId: id,
    label: z.string(),
    hints: hints.optional(),
    tierCode: id.optional(),
    checkoutSessionId: id.optional(),
    stripeSubscriptionId: id.optional(),
    stripeCustomerId: id.optional(),
    contactEmail: z.string().min(1).optional(),
    contactName: z.string().optional(),
    createdAt: ts.optional(),
  }),
};

// ---------------------------------------------------------------------------------
// Router
const appRouter = t.router({
  companies: t.router({
    getByProductLink: q('companies.getByProductLink', S['companies.getByProductLink'], (input) =>
      input.externalOrgId === 'org_unlinked' ? null : output('companies.getByProductLink'),
    ),
    create: m('companies.create', S['companies.create']),
    update: m('companies.update', S['companies.update']),
    smartLink: m('companies.smartLink', S['companies.smartLink']),
  }),
  contacts: t.router({
    create: m('contacts.create', S['contacts.create']),
    bulkUpsert: m('contacts.bulkUpsert', S['contacts.bulkUpsert']),
    list: q('contacts.list', S['contacts.list']),
  }),
  features: t.router({
    check: q('features.check', S['features.check']),
    listAccess: q('features.listAccess', S['features.listAccess']),
    setAccess: m('features.setAccess', S['features.setAccess']),
    getAccessByExternalOrgId: q('features.getAccessByExternalOrgId', S['features.getAccessByExternalOrgId']),
    checkByExternalOrgId: q('features.checkByExternalOrgId', S['features.checkByExternalOrgId']),
  }),
  billing: t.router({
    trackUsage: m('billing.trackUsage', S['billing.trackUsage']),
    claimCheckout: m('billing.claimCheckout', S['billing.claimCheckout']),
    linkSubscription: m('billing.linkSubscription', S['billing.linkSubscription']),
    getStatus: q('billing.getStatus', S['billing.getStatus']),
  }),
  tiers: t.router({
    list: q('tiers.list', null),
    get: q('tiers.get', S['tiers.get']),
    applyTier: m('tiers.applyTier', S['tiers.applyTier']),
  }),
  links: t.router({
    create: m('links.create', S['links.create']),
    reset: m('links.reset', S['links.reset']),
  }),
  onboard: m('onboard', S.onboard),
});

// Sanity: every canned output belongs to a procedure and vice versa.
{
  const procs = Object.keys(appRouter._def.procedures).sort();
  const outs = Object.keys(OUTPUTS).sort();
  if (JSON.stringify(procs) !== JSON.stringify(outs)) {
    throw new Error(`router procedures ${procs} != outputs.json keys ${outs}`);
  }
}

const trpcHandler = createHTTPHandler({
  router: appRouter,
  basePath: `${PREFIX}/`,
  allowBatching: !args['no-batching'],
  maxBatchSize: MAX_BATCH,
  createContext: ({ req }) => ({ raw: req.__rawRequest ?? null }),
  onError: ({ error, path }) => {
    if (error.code === 'INTERNAL_SERVER_ERROR' && !String(error.message).startsWith('injected ')) {
      process.stderr.write(`[conformance-server] ${path ?? '?'}: ${error.stack ?? error.message}\n`);
    }
  },
});

// ---------------------------------------------------------------------------------
// HTTP server: control endpoints + body buffering in front of the tRPC handler
function sendJSON(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function header(req, name) {
  const v = req.headers[name];
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}

const server = http.createServer((req, res) => {
  const pathname = (req.url ?? '/').split('?')[0];

  if (pathname === '/__calls' || pathname === '/__requests') {
    if (req.method !== 'GET') return sendJSON(res, 405, { error: 'use GET' });
    return sendJSON(res, 200, pathname === '/__calls' ? calls : requests);
  }
  if (pathname === '/__reset') {
    if (req.method !== 'POST') return sendJSON(res, 405, { error: 'use POST' });
    calls.length = 0;
    requests.length = 0;
    overrides.clear();
    return sendJSON(res, 200, { ok: true });
  }
  if (pathname === '/__output') {
    if (req.method !== 'POST') return sendJSON(res, 405, { error: 'use POST' });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const { path, output: value } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (!(path in OUTPUTS)) return sendJSON(res, 404, { error: `unknown procedure ${path}` });
      overrides.set(path, value);
      return sendJSON(res, 200, { ok: true });
    });
    return;
  }
  if (pathname !== PREFIX && !pathname.startsWith(`${PREFIX}/`)) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    return res.end('not found\n');
  }

  // Record the raw request. The body is teed, not consumed: our 'data' listener is
  // attached in the same tick as tRPC's own (createHTTPHandler reaches
  // incomingMessageToRequest synchronously), so tRPC reads the untouched stream
  // (its content-type checks, maxBodySize etc. behave exactly as without us) and the
  // record's `body` is complete before any procedure can run.
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const raw = {
    method: req.method,
    url: req.url,
    contentType: header(req, 'content-type'),
    authorization: header(req, 'authorization'),
    body: null,
  };
  if (hasBody) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      raw.body = Buffer.concat(chunks).toString('utf8');
    });
  }
  requests.push(raw);
  req.__rawRequest = raw;
  trpcHandler(req, res);
});

server.keepAliveTimeout = 5000;

let shuttingDown = false;
function shutdown() {
  if (shuttingDown) return;
  shuttingDown = true;
  const force = setTimeout(() => process.exit(0), 2000);
  force.unref();
  server.close(() => process.exit(0));
  server.closeIdleConnections?.();
  setTimeout(() => server.closeAllConnections?.(), 200).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  process.stdout.write(`LISTENING ${port}\n`);
});
