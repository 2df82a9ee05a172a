/**
 * The import rule of docs/architecture.md "Layers": dependencies point down. This test reads
 * every import of src/ (static, dynamic and type-only) and fails on one that points up or
 * sideways where the table below does not allow it. A new directory under src/ must be added to
 * the table (with the layers it may use) before anything in it is accepted.
 */
import {readdirSync, readFileSync, statSync} from 'node:fs';
import {dirname, join, relative, resolve} from 'node:path';
import {describe, expect, it} from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

/** Per area of src/: the areas its code may import (besides itself). */
const MAY_IMPORT: Record<string, string[]> = {
  util: [],
  transports: ['util'],
  // The SSH storage backend (repository/storage/ssh.ts) runs ssh with the transport's rules.
  repository: ['util', 'transports'],
  notify: ['util'],
  config: ['util', 'notify'],
  // The two platform adapters are independent of each other: both may use platforms/ itself.
  'platforms/libvirt': ['util', 'transports', 'platforms'],
  'platforms/ovirt': ['util', 'transports', 'platforms'],
  // The registry (platforms/registry.ts) builds both adapters from a connection's configuration.
  platforms: ['util', 'transports', 'config', 'platforms/libvirt', 'platforms/ovirt'],
  // The worker (runs on a host) and the appliance's end of it: the NBD client and the SSH transport only.
  worker: ['util', 'transports'],
  engine: ['util', 'transports', 'platforms', 'repository', 'worker'],
  // The control API's contract and client: what the daemon and its clients agree on.
  api: ['util', 'config', 'notify', 'platforms', 'engine'],
  daemon: ['util', 'transports', 'repository', 'notify', 'config', 'platforms', 'platforms/libvirt', 'platforms/ovirt', 'engine', 'api'],
  // The CLI's direct commands (repo verify, backup --host …) use the layers below, and it starts the console.
  cli: ['util', 'transports', 'repository', 'notify', 'config', 'platforms', 'platforms/libvirt', 'platforms/ovirt', 'engine', 'api', 'daemon', 'console', 'worker'],
  console: ['util', 'api', 'config'],
};

/**
 * What a front end may import only as types (erased at build time): the shapes it shows, never
 * the code behind them — the console reaches everything through the control API.
 */
const TYPES_ONLY: Record<string, string[]> = {
  console: ['platforms', 'notify', 'engine'],
};

function areaOf(file: string): string {
  const rel = relative(SRC, file).split('/');
  if (rel[0] === 'platforms' && (rel[1] === 'libvirt' || rel[1] === 'ovirt') && rel.length > 2) return `platforms/${rel[1]}`;
  return rel.length > 1 ? rel[0]! : '(top)';
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.tsx?$/.test(n) ? [p] : [];
  });
}

interface Import {
  spec: string;
  typeOnly: boolean;
}

function importsOf(text: string): Import[] {
  const out: Import[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?\sfrom\s+'([^']+)'/gm)) out.push({spec: m[3]!, typeOnly: m[2] !== undefined});
  for (const m of text.matchAll(/^\s*import\s+'([^']+)'/gm)) out.push({spec: m[1]!, typeOnly: false});
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) out.push({spec: m[1]!, typeOnly: false});
  return out;
}

export function violations(): string[] {
  const bad: string[] = [];
  for (const file of sources(SRC)) {
    const from = areaOf(file);
    const allowed = MAY_IMPORT[from];
    if (!allowed) {
      bad.push(`${relative(SRC, file)}: src/${from} is not in the layer table of test/util/layers.test.ts`);
      continue;
    }
    for (const imp of importsOf(readFileSync(file, 'utf8'))) {
      if (!imp.spec.startsWith('.')) continue;
      const target = resolve(dirname(file), imp.spec);
      if (!target.startsWith(`${SRC}/`)) {
        bad.push(`${relative(SRC, file)} imports ${imp.spec}, outside src/`);
        continue;
      }
      const to = areaOf(target);
      if (to === from || allowed.includes(to)) continue;
      if (imp.typeOnly && (TYPES_ONLY[from] ?? []).includes(to)) continue;
      bad.push(`${relative(SRC, file)} (${from}) imports ${imp.spec} (${to})${imp.typeOnly ? ' (types)' : ''}`);
    }
  }
  return bad;
}

describe('layers: dependencies point down', () => {
  it('no module imports a layer above it or beside it', () => {
    expect(violations()).toEqual([]);
  });

  it('the rule bites: an upward import is reported', () => {
    // The checker itself, on made-up text: an engine module importing the daemon.
    const imps = importsOf("import {Daemon} from '../daemon/daemon.js';\nimport type {X} from '../platforms/types.js';\nconst m = await import('../console/run.js');\n");
    expect(imps).toEqual([
      {spec: '../daemon/daemon.js', typeOnly: false},
      {spec: '../platforms/types.js', typeOnly: true},
      {spec: '../console/run.js', typeOnly: false},
    ]);
    expect(MAY_IMPORT.engine).not.toContain('daemon');
    expect(MAY_IMPORT.console).not.toContain('platforms');
  });
});

describe('the daemon: wiring apart from the services it exposes', () => {
  it('only the entry point imports the Daemon; the API server sees ApiServices', () => {
    const wiring = resolve(SRC, 'daemon/daemon.ts');
    const importers = sources(SRC)
      .filter((f) => importsOf(readFileSync(f, 'utf8')).some((i) => i.spec.startsWith('.') && resolve(dirname(f), i.spec).replace(/\.js$/, '.ts') === wiring))
      .map((f) => relative(SRC, f));
    expect(importers).toEqual(['daemon/main.ts']);
    expect(readFileSync(resolve(SRC, 'daemon/api.ts'), 'utf8')).toMatch(/constructor\(private readonly d: ApiServices\)/);
  });
});

describe('the control API is described once', () => {
  it('no part that speaks the control API (daemon, CLI, console, client) writes a path but the route table; every route is served, once', async () => {
    const {ROUTES} = await import('../../src/api/routes.js');
    const paths = new Set(Object.values(ROUTES).map((r) => r.path.split('/')[1]!));
    const literal = new RegExp(`['\`]/(${[...paths].filter((p) => !p.startsWith(':')).join('|')})[/'?\`$]`);
    const writers = sources(SRC)
      .filter((f) => /^(api|cli|console|daemon)\//.test(relative(SRC, f)) && !f.endsWith('api/routes.ts') && literal.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(writers).toEqual([]);
    // The server registers routes by name only: this.on('<name>', …) for each name, once.
    const server = readFileSync(resolve(SRC, 'daemon/api.ts'), 'utf8');
    const served = [...server.matchAll(/this\.on\(\s*'([a-zA-Z]+)'/g)].map((m) => m[1]!).sort();
    expect(served).toEqual(Object.keys(ROUTES).sort());
  });
});

describe('the design lives in the project', () => {
  it('no source, test, benchmark or document cites a path outside the repository', () => {
    const root = resolve(SRC, '..');
    const places = ['src', 'test', 'bench', 'docs', 'appliance', 'systemd'].map((d) => join(root, d));
    const files = [join(root, 'README.md'), ...places.flatMap((d) => walk(d))].filter((f) => !f.includes('/docs/reference/') && !f.includes('/fixtures/'));
    const outside = files.filter((f) => /\.\.\/shared\/|\/work\/shared|ARCHITECTURE\.md|STYLE\.md/.test(readFileSync(f, 'utf8'))).map((f) => relative(root, f));
    expect(outside).toEqual([]);
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (n === 'node_modules') return [];
    if (statSync(p).isDirectory()) return walk(p);
    return /\.(ts|tsx|md|sh|service|txt|json)$/.test(n) || !n.includes('.') ? [p] : [];
  });
}
