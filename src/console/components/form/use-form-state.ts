/**
 * The state of a form as a pure reducer: field values, the focused field, text cursors, and a
 * submit counter. Text fields take typed keys; choice and toggle fields cycle with ←/→/Space.
 * Enter moves to the next field and submits on the last one, so a form is filled top to bottom
 * with the keys an administrator expects.
 */
import type {Key} from 'ink';
import {initTextInput, textInputReducer, type TextInputAction, type TextInputState} from '../text-input/use-text-input-state.js';
import {textKeyAction} from '../text-input/use-text-input.js';

export type FieldKind = 'text' | 'secret' | 'choice' | 'toggle';

export interface FieldSpec {
  key: string;
  label: string;
  kind: FieldKind;
  /** For 'choice': the values in order; the label shown is `choices[i].label`. */
  choices?: readonly {value: string; label: string}[];
  placeholder?: string;
}

export interface FormState {
  fields: readonly FieldSpec[];
  /** Text of text/secret fields, the chosen value of choices, 'yes'/'no' for toggles. */
  text: Record<string, TextInputState>;
  focus: number;
  submitted: number;
  /** `q` or `?` pressed outside a text field: the shell's quit or help (with a counter). */
  intent?: {kind: 'quit' | 'help'; seq: number};
}

export type FormAction =
  | {type: 'next'}
  | {type: 'prev'}
  | {type: 'enter'}
  | {type: 'cycle'; step: 1 | -1}
  | {type: 'edit'; action: TextInputAction}
  | {type: 'set'; key: string; value: string}
  | {type: 'focus'; key: string}
  /** A key press, resolved against the field that has the focus *now* (not when it was pressed). */
  | {type: 'key'; input: string; key: KeyFlags};

export type KeyFlags = Partial<Key>;

export function initForm(fields: readonly FieldSpec[], values: Record<string, string> = {}): FormState {
  const text: Record<string, TextInputState> = {};
  for (const f of fields) {
    const v = values[f.key] ?? (f.kind === 'choice' ? (f.choices?.[0]?.value ?? '') : f.kind === 'toggle' ? 'no' : '');
    text[f.key] = initTextInput(v);
  }
  return {fields, text, focus: 0, submitted: 0};
}

export function formValues(s: FormState): Record<string, string> {
  return Object.fromEntries(Object.entries(s.text).map(([k, v]) => [k, v.value]));
}

export function formReducer(s: FormState, a: FormAction): FormState {
  const field = s.fields[s.focus];
  switch (a.type) {
    case 'key': {
      const k = a.key;
      // Outside a text field a run of characters ("q?") means one key after another.
      if ([...a.input].length > 1 && !(field?.kind === 'text' || field?.kind === 'secret'))
        return [...a.input].reduce((st, ch) => formReducer(st, {type: 'key', input: ch, key: {}}), s);
      const choice = field?.kind === 'choice' || field?.kind === 'toggle';
      if (k.upArrow || (k.tab && k.shift)) return formReducer(s, {type: 'prev'});
      if (k.downArrow || k.tab) return formReducer(s, {type: 'next'});
      if (k.return) return formReducer(s, {type: 'enter'});
      if (!(field?.kind === 'text' || field?.kind === 'secret') && (a.input === 'q' || a.input === '?') && !k.ctrl && !k.meta)
        return {...s, intent: {kind: a.input === 'q' ? 'quit' : 'help', seq: (s.intent?.seq ?? 0) + 1}};
      if (choice && (k.rightArrow || a.input === ' ')) return formReducer(s, {type: 'cycle', step: 1});
      if (choice && k.leftArrow) return formReducer(s, {type: 'cycle', step: -1});
      const edit = textKeyAction(a.input, a.key);
      return edit ? formReducer(s, {type: 'edit', action: edit}) : s;
    }
    case 'next':
      return s.focus + 1 < s.fields.length ? {...s, focus: s.focus + 1} : s;
    case 'prev':
      return s.focus > 0 ? {...s, focus: s.focus - 1} : s;
    case 'enter':
      return s.focus + 1 < s.fields.length ? {...s, focus: s.focus + 1} : {...s, submitted: s.submitted + 1};
    case 'focus': {
      const i = s.fields.findIndex((f) => f.key === a.key);
      return i < 0 ? s : {...s, focus: i};
    }
    case 'cycle': {
      if (!field) return s;
      if (field.kind === 'toggle') return setValue(s, field.key, s.text[field.key]!.value === 'yes' ? 'no' : 'yes');
      if (field.kind !== 'choice' || !field.choices?.length) return s;
      const i = field.choices.findIndex((c) => c.value === s.text[field.key]!.value);
      const n = field.choices.length;
      return setValue(s, field.key, field.choices[(((i < 0 ? 0 : i) + a.step) % n + n) % n]!.value);
    }
    case 'edit':
      if (!field || (field.kind !== 'text' && field.kind !== 'secret')) return s;
      return {...s, text: {...s.text, [field.key]: textInputReducer(s.text[field.key]!, a.action)}};
    case 'set':
      return s.text[a.key] === undefined ? s : setValue(s, a.key, a.value);
  }
}

function setValue(s: FormState, key: string, value: string): FormState {
  return {...s, text: {...s.text, [key]: initTextInput(value)}};
}
