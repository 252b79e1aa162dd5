import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as E from '../../src/engine/index.js';
import { nativeBackend } from '../../src/engine/setup.js';
import { h } from '../../src/engine/backends/native/index.js';
import { assertClose, assertThrowsWith, hasNative, makeValues, noNativeReason } from './harness.js';

const engineUrl = new URL('../../src/engine/index.js', import.meta.url).href;

function child(code: string, env: Record<string, string | undefined>): { stdout: string; stderr: string; status: number | null } {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) { if (v === undefined) delete e[k]; else e[k] = v; }
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import * as E from ${JSON.stringify(engineUrl)};\n${code}`], { encoding: 'utf8', env: e });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

test('the built-in blocked GEMM (used without OpenBLAS) matches the reference', { skip: noNativeReason ?? false }, () => {
  const addon = nativeBackend!.addon;
  for (const [M, N, K, tA, tB] of [[5, 7, 3, false, false], [64, 65, 300, true, false], [129, 33, 17, false, true], [70, 513, 260, true, true], [1, 1, 1, false, false]] as [number, number, number, boolean, boolean][]) {
    const av = makeValues({ shape: [M * K] }, M), bv = makeValues({ shape: [K * N] }, N);
    const a = E.tensor(Float32Array.from(av), tA ? [K, M] : [M, K]), b = E.tensor(Float32Array.from(bv), tB ? [N, K] : [K, N]);
    const c = E.zeros([M, N]);
    addon.matmul(h(a), h(b), h(c), M, N, K, tA, tB, 1, 0, 0, 0, 1, 0, true);
    const ref = E.matmul(E.toBackend(a, 'reference'), E.toBackend(b, 'reference'), { transA: tA, transB: tB });
    assertClose(c.toArray(), ref.toArray(), `builtin gemm ${M}x${N}x${K} ${tA}${tB}`, 1e-4, 1e-4);
  }
});

test('OpenBLAS core: set to SkylakeX on AVX-512 when unset, never overriding the user', { skip: noNativeReason ?? false }, () => {
  const info = E.engineInfo();
  assert.ok(info.openblasCore, 'the OpenBLAS core is reported');
  // The CPU by name (the core name alone does not tell the machine kind), with its core count.
  assert.match(info.cpu, new RegExp(`, ${cpus().length} cores?$`));
  if (existsSync('/proc/cpuinfo')) assert.match(info.cpu, /\(\w+ family \d+ model \d+\)/);
  const userSet = child('process.stdout.write(JSON.stringify(E.engineInfo()));', { OPENBLAS_CORETYPE: 'Haswell' });
  assert.equal(userSet.status, 0, userSet.stderr);
  const u = JSON.parse(userSet.stdout) as E.EngineInfo;
  assert.equal(u.openblasCoretypeEnv, 'Haswell');
  assert.equal(u.coretypeSetByStackwise, false);
  if (u.blas === 'openblas') assert.equal(u.openblasCore, 'Haswell');
  const unset = child('process.stdout.write(JSON.stringify(E.engineInfo()));', { OPENBLAS_CORETYPE: undefined });
  const d = JSON.parse(unset.stdout) as E.EngineInfo;
  if (d.coretypeSetByStackwise) assert.equal(d.openblasCoretypeEnv, 'SkylakeX');
  assert.equal(d.blasThreading === null || d.blasThreading === 'openmp' || d.blas === 'builtin', true, `BLAS threading: ${d.blasThreading}`);
});

test('a missing addon: a message that says what to install, and the reference backend still computes', () => {
  const r = child('const t = E.add(E.ones([2]), E.ones([2])); process.stdout.write(E.getDefaultBackend().name + " " + t.toList().join(","));', { STACKWISE_NATIVE_ADDON: '/nonexistent/stackwise_native.node', STACKWISE_BACKEND: undefined });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'reference 2,2');
  assert.match(r.stderr, /native addon unavailable/);
  assert.match(r.stderr, /libopenblas-openmp-dev/);
  assert.equal(r.stderr.match(/native addon unavailable/g)?.length, 1, 'said once');
});

test('backward through an op without a gradient, and a kernel missing on a backend: clear errors', () => {
  E.registerKernel('testOnlyForward', 'reference', ([x], _a, be) => [E.runOp('copy', [x], {}, be)[0]]);
  if (hasNative) E.registerKernel('testOnlyForward', 'native', ([x], _a, be) => [E.runOp('copy', [x], {}, be)[0]]);
  const p = E.ones([3], { requiresGrad: true });
  const y = E.runOp('testOnlyForward', [p], {})[0];
  assertThrowsWith(() => E.sum(y).backward(), /op 'testOnlyForward' is not differentiable/);
  E.registerKernel('testReferenceOnly', 'reference', ([x]) => [x]);
  if (hasNative) assertThrowsWith(() => E.runOp('testReferenceOnly', [E.ones([2], { backend: 'native' })], {}), /op 'testReferenceOnly': no kernel registered for backend 'native'/, /registered for: reference/);
  assertThrowsWith(() => E.runOp('noSuchOp', [E.ones([2])], {}), /noSuchOp/, /unknown op/);
});

