/** Backup jobs: every job with its schedule in words; Enter opens one, or create a new one. */
import {Box, Text} from 'ink';
import type {JobConfig} from '../../../config/schema.js';
import {describeSchedule} from '../../../config/schedule.js';
import {ErrorMessage} from '../../components/message/view.js';
import {Select} from '../../components/select/view.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';

export function Jobs(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const data = useLoad(() => api.list<JobConfig>('jobs'));
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  return (
    <Box flexDirection="column">
      <Select
        items={[
          ...data.data.map((j) => ({value: j.id, label: j.name, hint: `${j.enabled ? '' : '(disabled) '}${'repository' in j.source ? 'copy · ' : ''}${describeSchedule(j.schedule)}`})),
          {value: '+new', label: '+ New backup job'},
          {value: '+copy', label: '+ New copy job', hint: 'a second copy in another repository'},
        ]}
        visible={props.height - 2}
        onChoose={(item) => nav({type: 'push', route: item.value === '+new' ? {name: 'job-wizard'} : item.value === '+copy' ? {name: 'copy-job'} : {name: 'job', params: {id: item.value}}})}
      />
    </Box>
  );
}
