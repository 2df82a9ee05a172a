/**
 * Key bindings of a form: ↑/↓/Tab move, Enter next/submit, ←/→/Space cycle choices, other keys
 * edit the focused text field. Only dispatches; `q` and `?` are decided by the reducer (typed in
 * a text field, quit/help elsewhere), see app/key-capture.ts.
 */
import {useKeys} from '../use-keys.js';
import {useEffect, useReducer, useRef} from 'react';
import {useOwnLetters} from '../../app/key-capture.js';
import {useNavigate} from '../../router/context.js';
import {formReducer, formValues, initForm, type FieldSpec} from './use-form-state.js';

export function useForm(opts: {fields: readonly FieldSpec[]; initial?: Record<string, string>; isActive?: boolean; onSubmit: (values: Record<string, string>) => void; onChange?: (values: Record<string, string>) => void}) {
  const [state, dispatch] = useReducer(formReducer, undefined, () => initForm(opts.fields, opts.initial));
  const isActive = opts.isActive ?? true;
  useKeys((input, key) => dispatch({type: 'key', input, key}), {isActive});
  useOwnLetters(isActive);
  const nav = useNavigate();
  useEffect(() => {
    if (state.intent) nav(state.intent.kind === 'quit' ? {type: 'quit'} : {type: 'help'});
  }, [state.intent, nav]);
  const onSubmit = useRef(opts.onSubmit);
  onSubmit.current = opts.onSubmit;
  const onChange = useRef(opts.onChange);
  onChange.current = opts.onChange;
  useEffect(() => {
    if (state.submitted > 0) onSubmit.current(formValues(state));
    // Only a new submit counts, not edits after it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [state.submitted]);
  useEffect(() => {
    onChange.current?.(formValues(state));
  }, [state.text]);
  return {state, dispatch};
}
