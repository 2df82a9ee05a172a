/**
 * `vmbackup repo serve DIR`: the far end of the SSH storage backend (ssh.ts). Runs on the
 * appliance that keeps the repository, started by sshd for one SSH session of the appliance that
 * copies to it; serves the one directory it was started with through the local directory backend
 * (which refuses every key that would leave the directory and never follows a symbolic link),
 * holds the locks the other end takes for as long as the session lives, and exits when its stdin
 * ends. No port, no daemon: the SSH key that may run it is the whole of the access, and the
 * administrator can pin it to this command and directory in authorized_keys (docs/security.md).
 */
import {hostname} from 'node:os';
import {isAbsolute, resolve} from 'node:path';
import type {Readable, Writable} from 'node:stream';
import {once} from 'node:events';
import {encodeFrame, FrameReader, ProtocolError, str, uint, type Frame} from '../../util/frames.js';
import {ExitCode, UserError} from '../../util/errors.js';
import type {Lock} from './backend.js';
import {LocalDirectoryBackend} from './local.js';
import {OPS, REMOTE_MAX_FRAME, REMOTE_PROTOCOL, toWire, type Op} from './remote-protocol.js';

export async function serveRepositoryDirectory(dir: string, input: Readable, output: Writable): Promise<void> {
  if (!isAbsolute(dir)) throw new UserError(`${dir} is not an absolute path.`, {hint: 'Serve a repository by its absolute path, e.g. vmbackup repo serve /srv/vmbackup/copy.', exitCode: ExitCode.usage});
  const root = resolve(dir);
  if (root === '/') throw new UserError('The root directory cannot be served as a repository.', {hint: 'Serve a directory of its own.', exitCode: ExitCode.usage});
  const backend = new LocalDirectoryBackend(root);
  const locks = new Map<string, Lock>();
  const waits = new Map<number, AbortController>();
  let greeted = false;
  let failed: Error | undefined;

  const send = async (header: {t: string} & Record<string, unknown>, body?: Uint8Array): Promise<void> => {
    let ok = true;
    for (const part of encodeFrame(header, body)) ok = output.write(part);
    if (!ok) await once(output, 'drain');
  };

  const handle = async (f: Frame): Promise<void> => {
    const h = f.header;
    if (h.t === 'hello') {
      if (uint(h, 'protocol') !== REMOTE_PROTOCOL) throw new ProtocolError(`protocol ${String(h.protocol)}; this vmbackup speaks ${REMOTE_PROTOCOL}`);
      greeted = true;
      await send({t: 'hello', protocol: REMOTE_PROTOCOL, path: root, now: Date.now(), host: hostname(), pid: process.pid});
      return;
    }
    if (!greeted) throw new ProtocolError(`a "${h.t}" before hello`);
    if (h.t === 'cancel') {
      waits.get(uint(h, 'of'))?.abort();
      return;
    }
    if (h.t !== 'q') throw new ProtocolError(`an unknown message "${h.t}"`);
    const id = uint(h, 'id');
    const op = str(h, 'op', 40) as Op;
    if (!OPS.includes(op)) throw new ProtocolError(`an unknown operation "${op}"`);
    try {
      // Data (get) as the body; any other value as JSON in the body (a listing may be large,
      // headers are small).
      const {v, body} = await run(op, h, f.body, id);
      if (body) await send({t: 'r', id, found: true}, body);
      else await send({t: 'r', id, ...(v !== undefined ? {json: true} : {})}, v !== undefined ? Buffer.from(JSON.stringify(v)) : undefined);
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      await send({t: 'r', id, err: toWire(err)});
    }
  };

  const run = async (op: Op, h: Record<string, unknown>, body: Buffer, id: number): Promise<{v?: unknown; body?: Buffer}> => {
    const k = (field: string) => str(h, field, 4096);
    switch (op) {
      case 'get': {
        const got = await backend.get(k('key'), {max: uint(h, 'max'), what: str(h, 'what', 200)});
        return got === undefined ? {v: {found: false}} : {body: got};
      }
      case 'stat':
        return {v: (await backend.stat(k('key'))) ?? null};
      case 'list':
        return {v: await backend.list(k('dir'))};
      case 'put':
        await backend.put(k('key'), [body], {what: str(h, 'what', 200)});
        return {};
      case 'putIfAbsent':
        return {v: await backend.putIfAbsent(k('key'), [body])};
      case 'append':
        await backend.append(k('key'), str(h, 'text', 60_000));
        return {};
      case 'touch':
        return {v: await backend.touch(k('key'))};
      case 'delete':
        return {v: await backend.delete(k('key'))};
      case 'deleteTree':
        await backend.deleteTree(k('dir'));
        return {};
      case 'deleteIfOlder':
        return {v: await backend.deleteIfOlder(k('key'), uint(h, 'cutoffMs'))};
      case 'rename':
        return {v: await backend.rename(k('from'), k('to'))};
      case 'sync':
        await backend.sync();
        return {};
      case 'lock': {
        const lid = str(h, 'lid', 64);
        if (locks.has(lid)) throw new ProtocolError(`lock ${lid} taken twice`);
        const ac = new AbortController();
        waits.set(id, ac);
        try {
          const lock = await backend.lock(k('key'), {purpose: str(h, 'purpose', 500), timeoutMs: uint(h, 'timeoutMs'), what: str(h, 'what', 500), hint: str(h, 'hint', 2000), signal: ac.signal});
          locks.set(lid, lock);
          return {v: lock.path};
        } finally {
          waits.delete(id);
        }
      }
      case 'unlock': {
        const lid = str(h, 'lid', 64);
        const lock = locks.get(lid);
        locks.delete(lid);
        await lock?.release();
        return {};
      }
      case 'leftovers':
        return {v: await backend.leftovers(k('dir'))};
      case 'readLeftover': {
        const got = await backend.readLeftover(k('dir'), str(h, 'name', 600), uint(h, 'max'));
        return got === undefined ? {v: {found: false}} : {body: got};
      }
      case 'restoreLeftover':
        await backend.restoreLeftover(k('dir'), str(h, 'name', 600));
        return {};
      case 'removeLeftover':
        await backend.removeLeftover(k('dir'), str(h, 'name', 600));
        return {};
      case 'makeDir':
        await backend.makeDir(k('dir'));
        return {};
      case 'space':
        return {v: (await backend.space()) ?? null};
    }
  };

  const reader = new FrameReader((f) => {
    handle(f).catch((err: unknown) => {
      failed ??= err instanceof Error ? err : new Error(String(err));
      input.destroy();
    });
  }, REMOTE_MAX_FRAME);
  input.on('data', (d: Buffer) => {
    try {
      reader.push(d);
    } catch (err) {
      failed ??= err as Error;
      input.destroy();
    }
  });
  await new Promise<void>((done) => {
    input.once('end', done);
    input.once('close', done);
    input.once('error', done);
  });
  for (const w of waits.values()) w.abort();
  for (const l of locks.values()) await l.release().catch(() => undefined);
  await backend.sync().catch(() => undefined);
  if (failed) throw new UserError(`The other end broke the repository protocol: ${failed.message}.`, {hint: 'Use the same vmbackup version on both appliances.', exitCode: ExitCode.invalidInput});
}
