/**
 * Once per vitest run, before any test file: compile src/ into dist/ and the demo lab's simulator
 * into dist-demo-sim/ (tsc, as appliance/build-deb.sh does), so child processes run the code of this
 * checkout as compiled JavaScript (test/lib/dist.ts) — a stale dist/ would otherwise be tested —
 * and no test compiles while others load the files (the package test packs them `--prebuilt`).
 */
import {execFileSync} from 'node:child_process';
import {fileURLToPath} from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  for (const project of ['tsconfig.json', 'appliance/tsconfig.demo-sim.json']) {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', project], {cwd: root, stdio: 'inherit'});
  }
}
