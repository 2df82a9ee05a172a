/** Draws a text value with its cursor as an inverse block; secrets as bullets. */
import {Text} from 'ink';
import type {TextInputState} from './use-text-input-state.js';

export function TextInputView(props: {state: TextInputState; focused: boolean; secret?: boolean; placeholder?: string}) {
  const chars = [...(props.secret ? '•'.repeat([...props.state.value].length) : props.state.value)];
  if (!props.focused) return chars.length ? <Text>{chars.join('')}</Text> : <Text dimColor>{props.placeholder ?? ''}</Text>;
  const before = chars.slice(0, props.state.cursor).join('');
  const at = chars[props.state.cursor] ?? ' ';
  const after = chars.slice(props.state.cursor + 1).join('');
  return (
    <Text>
      {before}
      <Text inverse>{at}</Text>
      {after}
      {chars.length === 0 && props.placeholder ? <Text dimColor>{props.placeholder}</Text> : null}
    </Text>
  );
}
