/**
 * The retention lock of a repository: shows it and what holds it (vmbackup only, or the storage
 * too where S3 Object Lock is on), and raises it. No restore point younger than the lock can be
 * forgotten or pruned by anyone through the CLI, the API or this console; it is never lowered.
 */
import {Box, Text} from 'ink';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {Form} from '../../components/form/view.js';
import {useApi} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import {ExitCode, UserError} from '../../../util/errors.js';

export function RetentionLock(props: {repository: string; name: string}) {
  const api = useApi();
  const data = useLoad(() => api.retentionLock(props.repository));
  const action = useAction();
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  const now = data.data.lock;
  const save = async (v: Record<string, string>) => {
    const r = await action.run(
      'Setting the retention lock',
      async () => {
        const raw = (v.days ?? '').trim();
        if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 36500) {
          throw new UserError(`"${raw}" is not a number of days from 1 to 36500.`, {hint: 'Type a whole number, e.g. 30.', exitCode: ExitCode.invalidInput});
        }
        return api.setRetentionLock(props.repository, Number(raw));
      },
      (reply) => `${props.name} is locked for ${reply.lock?.days ?? '?'} days.`,
    );
    if (r.ok) data.reload();
  };
  return (
    <Box flexDirection="column">
      <Text bold>Retention lock of {props.name}</Text>
      <Text wrap="wrap">
        {now ? `Locked for ${now.days} days (set ${now.setAt.slice(0, 10)}): no restore point younger than that can be forgotten or pruned.` : 'No lock: restore points go as retention and the administrators decide.'}
      </Text>
      <Text wrap="wrap" dimColor>
        {data.data.note} A lock can be raised, never lowered or removed.
      </Text>
      <Form
        fields={[{key: 'days', label: 'Lock for (days)', kind: 'text', placeholder: now ? `${now.days} or more` : 'e.g. 30'}]}
        submitLabel="lock"
        onSubmit={(v) => void save(v)}
      />
      <ActionMessage state={action.state} />
    </Box>
  );
}
