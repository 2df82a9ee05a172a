/**
 * A copy job in one form (the second copy of 3-2-1): from which repository to which, when, how
 * many restore points the copy keeps, whether the copies are read back and checked, and a
 * bandwidth limit. New (from the menu or the jobs list) or an existing copy job (its Edit).
 * Everything else of a job (notification, retries) keeps the daemon's defaults or what it had.
 */
import {Box, Text} from 'ink';
import type {JobConfig} from '../../../config/schema.js';
import {describeSchedule} from '../../../config/schedule.js';
import {savedJob} from '../../../api/jobs.js';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {idFromName} from '../../ids.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import {ExitCode, UserError} from '../../../util/errors.js';
import type {ScreenProps} from '../types.js';

/** The job the form's values describe (on top of `was`, an edited job); a UserError when a value is not usable. */
export function copyJobFrom(v: Record<string, string>, taken: string[], was?: JobConfig): Record<string, unknown> {
  const bad = (message: string, hint: string) => new UserError(message, {hint, exitCode: ExitCode.invalidInput});
  if (!v.name?.trim()) throw bad('The job needs a name.', 'Type a name, e.g. "Offsite copy".');
  if (!v.from || !v.to) throw bad('Two repositories are needed: one to copy from, one to copy to.', 'Add the second repository first (Menu → Repositories).');
  if (v.from === v.to) throw bad('The copy must go to another repository.', 'Choose a different "To" repository.');
  const at = v.at?.trim() ?? '';
  if (at && !/^([01]\d|2[0-3]):[0-5]\d$/.test(at)) throw bad(`"${at}" is not a time of day.`, 'Write it as HH:MM (24-hour), or leave it empty to run the job by hand only.');
  const keep = v.keep?.trim() ? Number(v.keep) : 14;
  if (!Number.isInteger(keep) || keep < 1 || keep > 9999) throw bad('Keep must be a number of restore points from 1 to 9999.', 'E.g. 14: the newest 14 of each VM.');
  const mbps = v.mbps?.trim() ? Number(v.mbps) : undefined;
  if (mbps !== undefined && !(mbps > 0)) throw bad('The bandwidth limit must be a number of MB/s above 0.', 'Leave it empty for no limit.');
  // A schedule the form cannot show (monthly, every N hours, cron) stays as it is while "Daily at" is left empty.
  const kept = was && was.schedule.kind !== 'none' && was.schedule.kind !== 'daily' && !at ? was.schedule : undefined;
  const days = was?.schedule.kind === 'daily' ? was.schedule.days : undefined;
  return {
    ...(was ? savedJob(was) : {}),
    id: was?.id ?? idFromName(v.name, taken),
    name: v.name.trim(),
    source: {repository: v.from, vms: 'repository' in (was?.source ?? {}) ? (was!.source as {vms: string[]}).vms : [], verify: v.verify !== 'no'},
    repository: v.to,
    schedule: kept ?? (at ? {kind: 'daily', at, ...(days ? {days} : {})} : {kind: 'none'}),
    retention: {...(was?.retention ?? {}), restorePoints: keep},
    // undefined (no limit) replaces an edited job's limit: JSON leaves the field out.
    bandwidthLimitMBps: mbps,
  };
}

export function CopyJobScreen(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const action = useAction();
  const editId = props.params?.id;
  const setup = useLoad(async () => {
    const [repositories, jobs] = await Promise.all([api.list('repositories'), api.list('jobs')]);
    return {repositories, jobs, job: editId ? ((await api.get('jobs', editId)) as unknown as JobConfig) : undefined};
  }, [editId]);
  if (setup.error && !setup.data) return <ErrorMessage error={setup.error} />;
  if (!setup.data) return <Text color="cyan">… loading</Text>;
  const {repositories, jobs, job} = setup.data;
  const repos = repositories.map((r) => ({value: String(r.id), label: String(r.name)}));
  const src = job && 'repository' in job.source ? job.source : undefined;
  const save = async (v: Record<string, string>) => {
    const r = await action.run(
      job ? 'Saving the copy job' : 'Creating the copy job',
      async () => {
        const body = copyJobFrom(v, jobs.map((j) => String(j.id)), job);
        await (job ? api.update('jobs', job.id, body) : api.create('jobs', body));
        return body;
      },
      (body) => `Copy job ${String(body.name)} saved.`,
    );
    if (r.ok) nav({type: 'pop'});
  };
  return (
    <Box flexDirection="column">
      <Text wrap="wrap">
        A copy job keeps a second copy of the restore points (3-2-1): it copies those its retention keeps, only what the target lacks, and reads the copies back to check them.
        {repos.length < 2 ? ' Add a second repository first (Menu → Repositories).' : ''}
      </Text>
      <Form
        fields={[
          {key: 'name', label: 'Name', kind: 'text', placeholder: 'e.g. Offsite copy'},
          {key: 'from', label: 'From', kind: 'choice', choices: repos.length ? repos : [{value: '', label: '(no repository)'}]},
          {key: 'to', label: 'To', kind: 'choice', choices: repos.length ? repos : [{value: '', label: '(no repository)'}]},
          {
            key: 'at',
            label: 'Daily at',
            kind: 'text',
            placeholder: job && job.schedule.kind !== 'none' && job.schedule.kind !== 'daily' ? `(empty: keeps "${describeSchedule(job.schedule)}")` : 'HH:MM (empty: by hand only)',
          },
          {key: 'keep', label: 'Keep', kind: 'text', placeholder: 'restore points per VM (empty: 14)'},
          {key: 'verify', label: 'Check copies', kind: 'toggle'},
          {key: 'mbps', label: 'Limit MB/s', kind: 'text', placeholder: '(empty: no limit)'},
        ]}
        initial={{
          name: job?.name ?? '',
          from: src?.repository ?? repos[0]?.value ?? '',
          to: job?.repository ?? repos[1]?.value ?? repos[0]?.value ?? '',
          at: job?.schedule.kind === 'daily' ? job.schedule.at : '',
          keep: String(job?.retention.restorePoints ?? ''),
          verify: src?.verify === false ? 'no' : 'yes',
          mbps: job?.bandwidthLimitMBps !== undefined ? String(job.bandwidthLimitMBps) : '',
        }}
        submitLabel={job ? 'save' : 'create'}
        onSubmit={(v) => void save(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
