/**
 * Small HTTP helpers of the control API: JSON bodies with a size limit, JSON replies, and the
 * error shape {error: {message, hint, field?, exitCode}} with a 4xx status for user errors.
 */
import type {IncomingMessage, ServerResponse} from 'node:http';
import {ConfigError} from '../config/parse.js';
import {ExitCode, UserError, isUserError} from '../util/errors.js';

const MAX_BODY = 1024 * 1024;

export interface ApiErrorBody {
  error: {message: string; hint?: string; field?: string; exitCode: number};
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new UserError('The request body is larger than 1 MiB.', {hint: 'Send a smaller object.', exitCode: ExitCode.invalidInput});
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError('The request body is not valid JSON.', {hint: 'Send a JSON object with Content-Type: application/json.', exitCode: ExitCode.invalidInput});
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store'});
  res.end(text);
}

export function statusFor(err: UserError): number {
  switch (err.exitCode) {
    case ExitCode.notFound:
      return 404;
    case ExitCode.locked:
      return 409;
    case ExitCode.forbidden:
      return 403;
    case ExitCode.invalidInput:
    case ExitCode.usage:
      return 400;
    default:
      return 422;
  }
}

export function errorBody(err: unknown): {status: number; body: ApiErrorBody} {
  if (isUserError(err)) {
    return {
      status: statusFor(err),
      body: {error: {message: err.message, hint: err.hint, field: err instanceof ConfigError ? err.field : undefined, exitCode: err.exitCode}},
    };
  }
  return {status: 500, body: {error: {message: 'Internal error in vmbackupd; see the daemon log (journalctl -u vmbackupd).', exitCode: ExitCode.internal}}};
}
