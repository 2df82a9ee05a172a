/** The main menu: every screen of the console, in the order of the first-start walk-through. */
import {Box} from 'ink';
import {Select} from '../../components/select/view.js';
import {useNavigate} from '../../router/context.js';
import type {ScreenProps} from '../types.js';

export const MENU = [
  {value: 'repositories', label: 'Repositories', hint: 'restore points, verify, prune, GC, add'},
  {value: 'connections', label: 'Connections', hint: 'oVirt engines, VM Essentials hosts'},
  {value: 'workers', label: 'Workers', hint: 'where disk tasks run'},
  {value: 'email', label: 'Email', hint: 'report settings, test message'},
  {value: 'webhooks', label: 'Webhooks', hint: 'reports to Slack, Teams, Mattermost, JSON'},
  {value: 'jobs', label: 'Backup jobs', hint: 'list, edit, run'},
  {value: 'job-wizard', label: 'New backup job'},
  {value: 'copy-job', label: 'New copy job', hint: 'a second copy in another repository'},
  {value: 'sessions', label: 'Sessions', hint: 'history of every job'},
  {value: 'restore', label: 'Restore'},
  {value: 'appliance', label: 'Appliance', hint: 'health, free space, daemon log'},
  {value: 'audit', label: 'Audit log', hint: 'who changed what, and when'},
  {value: 'first-start', label: 'Setup walk-through'},
] as const;

export function Menu(props: ScreenProps) {
  const nav = useNavigate();
  return (
    <Box flexDirection="column">
      <Select items={MENU} visible={props.height - 1} onChoose={(item) => nav({type: 'push', route: {name: item.value}})} />
    </Box>
  );
}
