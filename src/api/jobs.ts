/** Shapes of the jobs API that the CLI and the console share (no dependencies: the console loads it). */

/** A job as GET /jobs lists it carries computed `info` (next runs, last session); what PUT takes is the rest. */
export function savedJob<T extends object>(listed: T): Omit<T, 'info'> {
  const {info: _info, ...rest} = listed as T & {info?: unknown};
  return rest;
}
