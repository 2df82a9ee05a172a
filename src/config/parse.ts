/**
 * Validation with messages that name the field: "jobs.schedule.at: must be HH:MM (24-hour …)".
 *
 * Our schema messages say only what is wrong; the path comes from zod's issue path, prefixed
 * with the collection ("jobs"), so the console can put the message beside the right input and
 * the API can return it as `field`.
 */
import type {z} from 'zod';
import {ExitCode, UserError} from '../util/errors.js';

export interface FieldProblem {
  field: string;
  message: string;
}

/** A UserError that also says which field(s) were bad; the API returns the first as `field`. */
export class ConfigError extends UserError {
  readonly problems: FieldProblem[];
  constructor(problems: FieldProblem[], hint = 'Correct the field named above and save again; nothing was changed.') {
    super(problems.map((p) => `${p.field}: ${p.message}`).join('; '), {hint, exitCode: ExitCode.invalidInput});
    this.name = 'ConfigError';
    this.problems = problems;
  }
  get field(): string | undefined {
    return this.problems[0]?.field;
  }
}

export function fieldPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p as string];
  }
  return v;
}

/**
 * A failed union (a job's source: VMs of a connection, or another repository's points) names the
 * problems of the branch the input was meant for: the one with the fewest missing or unknown
 * fields (the first on a tie), its paths made absolute.
 */
function unionBranch(issue: z.core.$ZodIssue, input: unknown): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
  const at = valueAt(input, issue.path);
  const misfit = (errs: z.core.$ZodIssue[]) =>
    errs.filter((e) => e.code === 'unrecognized_keys' || (e.code === 'invalid_type' && valueAt(at, e.path) === undefined)).length;
  const best = issue.errors.reduce((a, b) => (misfit(b) < misfit(a) ? b : a));
  return best.flatMap((e) => unionBranch({...e, path: [...issue.path, ...e.path]} as z.core.$ZodIssue, input));
}

/** Parses `input` with `schema` or throws a ConfigError naming every bad field under `prefix`. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, prefix: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems: FieldProblem[] = [];
  for (const issue of result.error.issues.flatMap((i) => unionBranch(i, input))) {
    const field = fieldPath(prefix, issue.path);
    // A missing field gets the schema's "wrong type" message otherwise; say it plainly.
    const missing = issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined;
    let message = missing ? 'is required' : issue.message;
    // The notify schemas put their own field name first ("smtp port: must be …"): keep theirs.
    if (prefix === 'email' || issue.path.includes('notification')) message = message.replace(/^[a-z][a-zA-Z ]*: /, '');
    if (!problems.some((p) => p.field === field && p.message === message)) problems.push({field, message});
  }
  throw new ConfigError(problems);
}
