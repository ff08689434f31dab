// The package's TypeScript check: installs the built package (pkg/) into
// tests/node_modules as a copy, as `npm install` of the tarball would; writes
// every js/ts code block of its README into types/readme/ as a module of its
// own (blocks without imports get the first example's import); fails if a public type is `any`; then runs `tsc --strict --noEmit`
// over usage.ts, react-usage.tsx and the README blocks (tsconfig.json).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const tests = join(here, '..');
const pkg = process.env.TIDINGS_PKG_DIR ?? join(tests, '..', 'pkg');
if (!existsSync(join(pkg, 'index.d.ts')) || !existsSync(join(pkg, 'tidings.d.ts'))) {
  console.error(`[types] no built package at ${pkg}: run scripts/build-pkg.sh first`);
  process.exit(1);
}

const installed = join(tests, 'node_modules', 'tidings');
rmSync(installed, { recursive: true, force: true });
cpSync(pkg, installed, { recursive: true });

// README blocks, each a module (`export {}`), so top-level await works and names do not clash.
const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
const out = join(here, 'readme');
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const fence = /^```(js|jsx|ts|tsx)\n([\s\S]*?)^```$/gm;
let count = 0;
for (const [, lang, code] of readme.matchAll(fence)) {
  count += 1;
  const ext = lang.endsWith('x') ? 'tsx' : 'ts';
  // A block without imports continues the README's first example, which imports from 'tidings'.
  const head = /^import /m.test(code) ? '' : "import init, { connect } from 'tidings';\n";
  writeFileSync(join(out, `block-${String(count).padStart(2, '0')}.${ext}`), `${head}${code}\nexport {};\n`);
}
if (count === 0) {
  console.error('[types] found no code blocks in the package README');
  process.exit(1);
}

// No public type is `any`: the hand-written entry points, and what they re-export.
const anyType = /(:|<|\||=>|\bextends)\s*any\b|\bany\s*(\[\]|\||>|;|,|\))/;
for (const file of ['index.d.ts', 'react.d.ts', 'testing.d.ts']) {
  const lines = readFileSync(join(installed, file), 'utf8').split('\n');
  const bad = lines.map((l, i) => [i + 1, l]).filter(([, l]) => !/^\s*(\/\/|\*|\/\*\*)/.test(l) && anyType.test(l));
  if (bad.length > 0) {
    console.error(`[types] ${file} has an \`any\` type:\n${bad.map(([n, l]) => `  ${n}: ${l}`).join('\n')}`);
    process.exit(1);
  }
}

const tsc = join(tests, 'node_modules', 'typescript', 'bin', 'tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });
} catch {
  console.error('[types] tsc --strict found errors (above)');
  process.exit(1);
}
console.log(`[types] tsc --strict: usage.ts, react-usage.tsx and ${count} README blocks compile; every @ts-expect-error is an error`);
