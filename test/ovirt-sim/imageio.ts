/**
 * The simulated ovirt-imageio data plane (docs/reference/ovirt-backup-api.md §6), as served both by the host
 * daemon (transfer_url) and the engine proxy (proxy_url). Status codes, bodies and the
 * connection handling follow what was captured from imageio 2.5.3: text/plain errors, 403 with
 * `connection: close`, 416 with `content-range: bytes * /size`, no HEAD, no multi-range.
 *
 * Every data request is recorded in `log` (which listener, op, range) for tests.
 */
import type {IncomingMessage, ServerResponse} from 'node:http';
import {readBody} from './engine-api.js';
import type {SimState, SimTicket} from './state.js';

export interface ImageioLogEntry {via: 'daemon' | 'proxy'; op: string; ticket: string; start?: number; length?: number; status: number}

const SERVER = 'imageio/2.5.3';

export class ImageioServer {
  constructor(private readonly state: SimState, private readonly log: ImageioLogEntry[]) {}

  async handle(via: 'daemon' | 'proxy', req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://sim');
    const method = req.method ?? 'GET';
    const entry: ImageioLogEntry = {via, op: method, ticket: '', status: 0};
    const reply = (status: number, body: string | Buffer, headers: Record<string, string | number> = {}) => {
      entry.status = status;
      this.log.push(entry);
      res.writeHead(status, {server: SERVER, 'content-length': Buffer.byteLength(body), ...headers});
      res.end(body);
    };
    const error = (status: number, msg: string) => {
      // An error before the body was read closes the connection (§6.7); 403 always does.
      const headers: Record<string, string> = {'content-type': 'text/plain; charset=UTF-8'};
      if (status === 403 || (req.headers['content-length'] && !req.readableEnded)) headers.connection = 'close';
      reply(status, msg + '\n', headers);
    };
    if (url.pathname === '/info/' && method === 'GET') return reply(200, JSON.stringify({version: '2.5.3'}), {'content-type': 'application/json'});
    const m = /^\/images\/([^/]+)(\/extents)?$/.exec(url.pathname);
    if (!m) return error(404, `No handler for '${url.pathname}'`);
    const ticketId = m[1]!;
    entry.ticket = ticketId;
    const isExtents = !!m[2];
    if (method === 'OPTIONS' && ticketId === '*' && !isExtents) {
      return reply(200, JSON.stringify({unix_socket: '\u0000/org/ovirt/imageio', features: ['checksum', 'extents', 'flush', 'zero']}), {
        allow: 'OPTIONS,GET,PUT,PATCH', 'content-type': 'application/json'});
    }
    const ticket = this.state.tickets.get(ticketId);
    if (!ticket) return error(403, `You are not allowed to access this resource: No such ticket ${ticketId}`);
    if (ticket.canceled) return error(403, `You are not allowed to access this resource: Transfer=${ticket.transferId} was canceled`);
    const canWrite = ticket.ops.includes('write');
    const transfer = this.state.transfers.get(ticket.transferId);
    const begin = () => {
      ticket.ongoing++;
    };
    const end = (bytes = 0) => {
      ticket.ongoing--;
      ticket.lastActivity = Date.now();
      if (transfer) transfer.transferred += bytes;
    };
    if (isExtents) {
      if (method !== 'GET') return error(405, `Method ${method} not allowed`);
      const context = url.searchParams.get('context') ?? 'zero';
      entry.op = `extents:${context}`;
      if (context !== 'zero' && context !== 'dirty') return error(400, `Unsupported value '${context}' for 'context', expecting one of ['dirty', 'zero']`);
      ticket.lastActivity = Date.now();
      if (context === 'dirty') {
        if (!ticket.dirty) return error(404, 'Ticket does not support dirty extents');
        return reply(200, JSON.stringify(ticket.image.dirtyExtents(ticket.dirty)), {'content-type': 'application/json'});
      }
      return reply(200, JSON.stringify(ticket.image.zeroExtents()), {'content-type': 'application/json'});
    }
    switch (method) {
      case 'OPTIONS':
        ticket.lastActivity = Date.now();
        return reply(200, JSON.stringify({
          unix_socket: '\u0000/org/ovirt/imageio',
          features: canWrite ? ['checksum', 'extents', 'flush', 'zero'] : ['checksum', 'extents'],
          max_readers: 8, max_writers: 8,
        }), {allow: canWrite ? 'OPTIONS,GET,PUT,PATCH' : 'OPTIONS,GET', 'content-type': 'application/json'});
      case 'GET':
        return this.get(req, res, ticket, entry, error, begin, end);
      case 'PUT': {
        entry.op = 'PUT';
        if (!canWrite) return error(403, `You are not allowed to access this resource: Transfer=${ticket.transferId} forbids write`);
        const len = req.headers['content-length'];
        if (len === undefined) return error(400, 'Content-Length header is required');
        const flush = url.searchParams.get('flush') ?? 'y';
        if (flush !== 'y' && flush !== 'n') return error(400, `Invalid flush value: '${flush}'`);
        const cr = req.headers['content-range'];
        const start = cr ? Number(/^bytes (\d+)-/.exec(cr)?.[1] ?? NaN) : 0;
        if (!Number.isSafeInteger(start)) return error(400, `Invalid Content-Range header: '${cr}'`);
        const length = Number(len);
        entry.start = start;
        entry.length = length;
        if (start + length > ticket.size) return error(416, 'Requested range out of allowed range');
        const disk = transfer ? this.state.disks.get(transfer.diskId) : undefined;
        if (disk?.allocation !== undefined && this.state.usageAfterWrite(disk, start, length) > disk.allocation) {
          // Past the end of the logical volume (block storage, state.ts allocationOf): qemu-nbd's
          // write fails with ENOSPC and imageio answers the request with its generic 500 (the
          // connection's catch-all in ovirt_imageio/_internal/http.py).
          await readBody(req);
          entry.start = start;
          entry.length = length;
          return error(500, 'Internal server error');
        }
        begin();
        const data = await readBody(req);
        ticket.image.write(start, data);
        end(data.length);
        return reply(200, '');
      }
      case 'PATCH': {
        if (!canWrite) return error(403, `You are not allowed to access this resource: Transfer=${ticket.transferId} forbids write`);
        const raw = await readBody(req);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(raw.toString());
        } catch {
          return error(400, 'Invalid JSON message Expecting value: line 1 column 1 (char 0)');
        }
        entry.op = `PATCH:${String(msg.op)}`;
        if (msg.op === 'flush') {
          ticket.lastActivity = Date.now();
          return reply(200, '');
        }
        if (msg.op !== 'zero') return error(400, `Unsupported value '${String(msg.op)}' for 'op', expecting one of ['flush', 'zero']`);
        if (msg.size === undefined) return error(400, "Missing required value for 'size'");
        if (!Number.isInteger(msg.size)) return error(400, `Integer required '${String(msg.size)}'`);
        const offset = msg.offset ?? 0;
        if (!Number.isInteger(offset)) return error(400, `Integer required '${String(offset)}'`);
        const size = msg.size as number;
        entry.start = offset as number;
        entry.length = size;
        if ((offset as number) + size > ticket.size) return error(416, 'Requested range out of allowed range');
        begin();
        ticket.image.zero(offset as number, size, ticket.sparse);
        end();
        return reply(200, '');
      }
      default:
        return error(405, `Method ${method} not allowed`);
    }
  }

  private get(
    req: IncomingMessage, res: ServerResponse, ticket: SimTicket, entry: ImageioLogEntry,
    error: (s: number, m: string) => void, begin: () => void, end: (n: number) => void,
  ): void {
    entry.op = 'GET';
    const range = req.headers.range;
    let start = 0;
    let last = ticket.size - 1;
    let partial = false;
    if (range !== undefined) {
      if (range.includes(',')) return error(416, `Cannot satisfy range '${range}', invalid range or multiple ranges`);
      if (/^bytes=-/.test(range)) return error(416, 'suffix-byte-range-spec not supported yet');
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m) return error(416, `Cannot satisfy range '${range}', invalid range or multiple ranges`);
      start = Number(m[1]);
      last = m[2] ? Number(m[2]) : ticket.size - 1;
      partial = true;
      if (start > last || last >= ticket.size) {
        entry.status = 416;
        this.log.push(entry);
        const body = 'Requested range out of allowed range\n';
        res.writeHead(416, {server: SERVER, 'content-type': 'text/plain; charset=UTF-8', 'content-length': body.length, 'content-range': `bytes */${ticket.size}`});
        res.end(body);
        return;
      }
    }
    const length = last - start + 1;
    entry.start = start;
    entry.length = length;
    entry.status = partial ? 206 : 200;
    this.log.push(entry);
    const headers: Record<string, string | number> = {
      server: SERVER, 'content-length': length, 'content-type': 'application/octet-stream', 'content-disposition': 'attachment',
    };
    if (partial) headers['content-range'] = `bytes ${start}-${last}/${ticket.size}`;
    begin();
    res.writeHead(partial ? 206 : 200, headers);
    let slices = ticket.image.slices(start, length);
    // A cancelled ticket ends this operation at the end of its current I/O buffer (state.ts dropTicket).
    const buffer = this.state.imageioBufferBytes;
    let canceled = false;
    let sent = 0;
    const abort = () => {
      canceled = true;
    };
    (ticket.inflight ??= new Set()).add(abort);
    const done = () => {
      ticket.inflight?.delete(abort);
      this.state.operationEnded(ticket);
    };
    const pump = () => {
      for (;;) {
        if (canceled && sent % buffer === 0) {
          done();
          res.destroy();
          return;
        }
        // The rest of the current buffer, at most one 64 KiB block at a time.
        const n = slices.next();
        if (n.done) {
          done();
          res.end(() => end(length));
          return;
        }
        let piece = n.value;
        const room = buffer - (sent % buffer);
        if (piece.length > room) {
          // A slice that crosses a buffer boundary: send up to the boundary, keep the rest for later.
          const rest = piece.subarray(room);
          piece = piece.subarray(0, room);
          const inner = slices;
          let pending: Buffer | undefined = rest;
          slices = (function* () {
            if (pending) yield pending;
            pending = undefined;
            yield* inner;
          })();
        }
        sent += piece.length;
        if (!res.write(piece)) {
          res.once('drain', pump);
          return;
        }
        if (this.state.faults.slowReadsMs) {
          // Staggered responses (a test's "slow storage"): the next slice after a pause.
          setTimeout(pump, this.state.faults.slowReadsMs);
          return;
        }
      }
    };
    res.on('close', () => {
      done();
      if (!res.writableFinished) end(0);
    });
    pump();
  }
}
