/**
 * Key bindings of a form: ↑/↓/Tab move, Enter next/submit, ←/→/Space cycle choices, other keys
 * edit the focused text field. Only dispatches. It also tells the app shell whether typed
 * letters belong to a text field (so `q` and `?` type instead of quitting).
 */
import {useKeys} from '../use-keys.js';
import {useEffect, useLayoutEffect, useReducer, useRef} from 'react';
import {useKeyCapture} from '../../app/key-capture.js';
import {formReducer, formValues, initForm, type FieldSpec} from './use-form-state.js';

export function useForm(opts: {fields: readonly FieldSpec[]; initial?: Record<string, string>; isActive?: boolean; onSubmit: (values: Record<string, string>) => void; onChange?: (values: Record<string, string>) => void}) {
  const [state, dispatch] = useReducer(formReducer, undefined, () => initForm(opts.fields, opts.initial));
  const isActive = opts.isActive ?? true;
  useKeys((input, key) => dispatch({type: 'key', input, key}), {isActive});
  const capture = useKeyCapture();
  const typing = isActive && ['text', 'secret'].includes(state.fields[state.focus]?.kind ?? '');
  useLayoutEffect(() => {
    capture.current.typing = typing;
    return () => {
      capture.current.typing = false;
    };
  }, [typing, capture]);
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
