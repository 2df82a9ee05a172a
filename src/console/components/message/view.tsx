/** Inline outcome of an action or a load: busy, done (✔) or the daemon's error in words (✖ + hint). */
import {Box, Text} from 'ink';
import type {ActionState} from '../../use-load.js';
import {StatusLine} from '../status/view.js';

export function ErrorMessage(props: {error: {message: string; hint?: string}}) {
  return (
    <Box flexDirection="column">
      <StatusLine tone="error" wrap>
        {props.error.message}
      </StatusLine>
      {props.error.hint ? <Text wrap="wrap">  {props.error.hint}</Text> : null}
    </Box>
  );
}

export function ActionMessage(props: {state: ActionState}) {
  const s = props.state;
  if (s.busy) return <Text color="cyan">… {s.busy}</Text>;
  if (s.ok)
    return (
      <StatusLine tone="ok" wrap>
        {s.ok}
      </StatusLine>
    );
  if (s.error) return <ErrorMessage error={s.error} />;
  return null;
}
