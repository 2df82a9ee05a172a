/** What the CLI and the console derive from the jobs API's replies (no dependencies: the console loads it). */

/** A job as GET /jobs lists it carries computed `info` (next runs, last session); what PUT takes is the rest. */
export function savedJob<T extends object>(listed: T): Omit<T, 'info'> {
  const {info: _info, ...rest} = listed as T & {info?: unknown};
  return rest;
}

interface SessionLike {
  jobId: string;
  state: string;
  startedAt: string;
  endedAt?: string;
}

/** A job's newest finished session and its newest good one (success or warning, ended), from a session list. */
export function jobOutcomes<S extends SessionLike>(sessions: readonly S[], jobId: string): {last?: S; good?: S} {
  const own = sessions.filter((s) => s.jobId === jobId && s.state !== 'running').sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
  return {last: own[0], good: own.find((s) => (s.state === 'success' || s.state === 'warning') && s.endedAt)};
}
