/** The email screen: the settings form, then a test message. */
import {useNavigate} from '../../router/context.js';
import {EmailForm} from './email-form.js';

export function Email() {
  const nav = useNavigate();
  return <EmailForm onDone={() => nav({type: 'pop'})} />;
}
