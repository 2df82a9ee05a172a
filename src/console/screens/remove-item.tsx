/**
 * Removing one configured object: the question first ("No" is the first choice, components/confirm),
 * then the removal through the daemon, and when that worked `after` (back to the list, reload).
 */
import type {Collection} from '../api.js';
import {Confirm} from '../components/confirm/view.js';
import {useApi} from '../router/context.js';
import type {useAction} from '../use-load.js';

export function RemoveConfirm(props: {
  action: ReturnType<typeof useAction>;
  collection: Collection;
  id: string;
  question: string;
  detail: string;
  done: string;
  onNo: () => void;
  after: () => void;
}) {
  const api = useApi();
  return (
    <Confirm
      question={props.question}
      detail={props.detail}
      yes="Yes, remove it"
      onNo={props.onNo}
      onYes={async () => {
        props.onNo();
        const r = await props.action.run('Removing', () => api.remove(props.collection, props.id), () => props.done);
        if (r.ok) props.after();
      }}
    />
  );
}
