// Stripe's own webhook signer and verifier, from the official `stripe` npm
// package (pinned in tests/browser/package.json), for tests that prove
// our signatures agree with Stripe's: tests/stripe_standin_check.py, and
// the HTTP tests of POST /hooks/stripe.
//
//   node tests/stripe_sign.mjs [DEPS] < {"payload": "...", "secret": "whsec_...", "timestamp": 1700000000}
//     prints the Stripe-Signature header that
//     stripe.webhooks.generateTestHeaderString({payload, secret, timestamp}) makes.
//   node tests/stripe_sign.mjs --verify [DEPS] < {"payload": "...", "secret": "whsec_...", "header": "t=...,v1=...",
//                                                 "tolerance": 300}
//     runs stripe.webhooks.constructEvent(payload, header, secret, tolerance):
//     prints "ok EVENT_ID" and exits 0, or prints the error and exits 1.
//
// DEPS is the folder whose node_modules holds stripe (default: tests/browser
// beside this file; tests/pmbtest.py's node_deps says which).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const verify = args[0] === '--verify';
if (verify)
  args.shift();
const deps = args[0] || path.join(path.dirname(fileURLToPath(import.meta.url)), 'browser');
const require = createRequire(path.join(deps, 'package.json'));
const Stripe = require('stripe');
// No request is made: the key only satisfies the constructor.
const stripe = Stripe('sk_test_unused');

const input = JSON.parse(fs.readFileSync(0, 'utf8'));
if (typeof input.payload !== 'string' || typeof input.secret !== 'string') {
  console.error('stripe_sign.mjs: stdin needs {"payload": string, "secret": string, ...}');
  process.exit(2);
}
if (!verify) {
  if (!Number.isInteger(input.timestamp)) {
    console.error('stripe_sign.mjs: stdin needs an integer "timestamp"');
    process.exit(2);
  }
  console.log(stripe.webhooks.generateTestHeaderString({
    payload: input.payload, secret: input.secret, timestamp: input.timestamp,
  }));
} else {
  try {
    const event = stripe.webhooks.constructEvent(input.payload, input.header, input.secret, input.tolerance);
    console.log('ok ' + event.id);
  } catch (e) {
    console.log(String(e.message).split('\n')[0]);
    process.exit(1);
  }
}
