// The fault soak (tests/soak/soak.mjs) in its short, fixed-seed form: every
// fault kind against real server, proxy, tabs and Node clients; nothing may
// be lost, duplicated, reordered or delivered across users.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../soak/soak.mjs', import.meta.url));

test('fault soak: nothing lost, nothing twice, nobody let in', { timeout: 240_000 }, async () => {
  const seed = process.env.SOAK_SEED ?? '20261123';
  const secs = process.env.SOAK_SECS ?? '45';
  const child = spawn(process.execPath, [script, '--seed', seed, '--secs', secs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  const code = await new Promise((r) => child.on('exit', r));
  const line = out.split('\n').find((l) => l.startsWith('SOAK_SUMMARY '));
  assert.ok(line, `no summary (exit ${code}):\n${out.slice(-3000)}`);
  const s = JSON.parse(line.slice('SOAK_SUMMARY '.length));
  console.log(`# soak seed ${s.seed} (redis: ${s.redis}, instances: ${s.instances}): ${s.faults} faults ${JSON.stringify(s.fault_kinds)}, ${s.publish_retries} publish retries with Idempotency-Key (${s.publish_retries_replayed} replayed), recovery p50 ${s.recovery_ms.p50} ms p99 ${s.recovery_ms.p99} ms`);
  // Every fault kind at least once: server kill, Redis kill (when redis-server is installed), cut, stall, trickle, refuse, leader, reload.
  assert.equal(Object.keys(s.fault_kinds).length, s.redis ? 8 : 7, `fault kinds: ${JSON.stringify(s.fault_kinds)}`);
  assert.deepEqual({ lost: s.lost, duplicated: s.duplicated, out_of_order: s.out_of_order, cross_user: s.cross_user, user_switch_violations: s.user_switch_violations, resets: s.resets },
    { lost: 0, duplicated: 0, out_of_order: 0, cross_user: 0, user_switch_violations: 0, resets: 0 }, out.slice(-3000));
  assert.equal(code, 0);
});
