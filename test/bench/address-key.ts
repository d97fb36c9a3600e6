/**
 * What the per-address limits' key costs a request (src/http/address-key.ts), per kind of address:
 * node --import tsx test/bench/address-key.ts
 */
import { addressKey } from '../../src/http/address-key.js';

const CALLS = 2_000_000;
for (const ip of ['198.51.100.7', '::ffff:198.51.100.7', '2001:db8:1:2:a:b:c:d']) {
  let sink = 0;
  for (let i = 0; i < 100_000; i += 1) sink += addressKey(ip).length;
  const started = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i += 1) sink += addressKey(ip).length;
  const ns = Number(process.hrtime.bigint() - started) / CALLS;
  console.log(`${ip.padEnd(24)} ${ns.toFixed(1)} ns a call${sink > 0 ? '' : ' '}`);
}
