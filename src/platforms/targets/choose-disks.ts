/**
 * Which disks of a restore point a restore writes: the ones asked for, or all. The one place that
 * says "it has no such disk", for every target and every platform (and the daemon, which checks a
 * request before it starts a restore).
 */
import {ExitCode, UserError} from '../../util/errors.js';

/** The disks of `all` whose keys are in `wanted` (all of them when `wanted` is undefined), in their order. */
export function chooseDisks<T extends {key: string}>(all: readonly T[], wanted: readonly string[] | undefined, owner: string): T[] {
  const unknown = (wanted ?? []).filter((k) => !all.some((d) => d.key === k));
  if (unknown.length > 0) {
    throw new UserError(`${owner} has no disk ${unknown.join(', ')}.`, {
      hint: `Its disks are: ${all.map((d) => d.key).join(', ') || '(none)'}.`,
      exitCode: ExitCode.notFound,
    });
  }
  return wanted ? all.filter((d) => wanted.includes(d.key)) : [...all];
}
