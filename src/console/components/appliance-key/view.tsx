/**
 * The appliance's SSH key where a form needs it authorized somewhere else (a KVM host, another
 * appliance): what to do there, the one line to add (yellow, to copy), an optional note; or why
 * the key could not be read.
 */
import {Box, Text} from 'ink';
import type {ApplianceSshKeyReply} from '../../api.js';
import type {LoadState} from '../../use-load.js';
import {ErrorMessage} from '../message/view.js';

export function ApplianceKeyLine(props: {
  state: LoadState<ApplianceSshKeyReply>;
  intro: (key: ApplianceSshKeyReply) => string;
  line: (key: ApplianceSshKeyReply) => string;
  note?: (key: ApplianceSshKeyReply) => string;
}) {
  const key = props.state.data;
  if (!key) return props.state.error ? <ErrorMessage error={props.state.error} /> : null;
  return (
    <Box flexDirection="column" marginBottom={1}>
      <Text wrap="wrap">{props.intro(key)}</Text>
      <Text color="yellow" wrap="wrap">
        {props.line(key)}
      </Text>
      {props.note ? (
        <Text dimColor wrap="wrap">
          {props.note(key)}
        </Text>
      ) : null}
    </Box>
  );
}
