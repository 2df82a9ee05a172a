/**
 * A form: one line per field, label column then value; `❯` marks the focused field. Choice
 * fields show ‹ value › so that the arrows are discoverable without colour.
 */
import {Box, Text} from 'ink';
import {Indicator} from 'ink-select-input';
import {TextInputView} from '../text-input/view.js';
import type {FieldSpec, FormState} from './use-form-state.js';
import {useForm} from './use-form.js';

export interface FormProps {
  fields: readonly FieldSpec[];
  initial?: Record<string, string>;
  isActive?: boolean;
  onSubmit: (values: Record<string, string>) => void;
  onChange?: (values: Record<string, string>) => void;
  submitLabel?: string;
}

export function Form(props: FormProps) {
  const {state} = useForm(props);
  const labelWidth = Math.min(22, Math.max(...props.fields.map((f) => f.label.length)) + 2);
  return (
    <Box flexDirection="column">
      {props.fields.map((f, i) => (
        <FieldRow key={f.key} field={f} state={state} focused={i === state.focus} labelWidth={labelWidth} />
      ))}
      <Text dimColor>{`  Enter ${state.focus === props.fields.length - 1 ? `= ${props.submitLabel ?? 'save'}` : '= next field'} · ↑↓ move${props.fields.some((f) => f.kind === 'choice' || f.kind === 'toggle') ? ' · ←→/Space change' : ''}`}</Text>
    </Box>
  );
}

function FieldRow(props: {field: FieldSpec; state: FormState; focused: boolean; labelWidth: number}) {
  const {field: f, state, focused} = props;
  const v = state.text[f.key]!;
  let value;
  if (f.kind === 'choice') {
    const label = f.choices?.find((c) => c.value === v.value)?.label ?? v.value;
    value = <Text color={focused ? 'cyan' : undefined}>{focused ? `‹ ${label} ›` : label}</Text>;
  } else if (f.kind === 'toggle') {
    value = <Text color={focused ? 'cyan' : undefined}>{v.value === 'yes' ? '[x] yes' : '[ ] no'}</Text>;
  } else {
    value = <TextInputView state={v} focused={focused} secret={f.kind === 'secret'} placeholder={f.placeholder} />;
  }
  return (
    <Box>
      <Indicator isSelected={focused} />
      <Box width={props.labelWidth} flexShrink={0}>
        <Text wrap="truncate-end">{f.label}</Text>
      </Box>
      <Box flexGrow={1}>
        <Text wrap="truncate-start">{value}</Text>
      </Box>
    </Box>
  );
}
