import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {execa} from 'execa';
import {destroyTestVm} from '../test/lib/libvirt.js';
import {ensureExt4Image} from './lib/ext4-image.js';
import {createBenchVm} from './lib/libvirt-vm.js';
const image = await ensureExt4Image('/var/tmp/vmbackup-bench', {sizeMiB: 3072, dataMiB: 800});
const dir = await mkdtemp(path.join(os.tmpdir(), 'vmb-t-'));
const vm = await createBenchVm(`vmbtest-t-${process.pid}`, image.path, image.sizeBytes);
const pass = path.join(dir, 'pass'); await writeFile(pass, 'a passphrase for the benchmark\n', {mode: 0o600});
try {
  for (const enc of [false, true, false, true]) {
    const repo = path.join(dir, `r${Math.random()}`);
    const key = enc ? ['--passphrase-file', pass] : [];
    await execa('node', ['dist/cli/main.js', 'repo', 'create', repo, ...(enc ? ['--encrypt'] : []), ...key]);
    const r = await execa('perf', ['stat', '-e', 'task-clock,page-faults,context-switches', '-x', ',', 'node', 'dist/cli/main.js', 'backup', '--host', 'local', '--vm', vm.name, '--repo', repo, '--full', '--json', ...key], {reject: false});
    const j = JSON.parse(r.stdout);
    console.log(enc ? 'enc  ' : 'plain', r.stderr.split('\n').filter((l) => /task-clock|page-faults|context/.test(l)).map((l) => l.split(',').slice(0, 3).join(' ')).join(' | '), JSON.stringify(j.figures ?? j.vm?.figures ?? Object.keys(j)));
  }
} finally { await destroyTestVm(vm); await rm(dir, {recursive: true, force: true}); }
