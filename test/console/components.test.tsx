/** The Select and Form components in Ink: bursts of keys in ONE write apply in order (P1). */
import {Text} from 'ink';
import {useState} from 'react';
import {afterEach, describe, expect, it} from 'vitest';
import {Form} from '../../src/console/components/form/view.js';
import {ProgressBar} from '../../src/console/components/progress-bar/view.js';
import {Select} from '../../src/console/components/select/view.js';
import {KEY, renderTree, type Rendered} from './harness.js';

let r: Rendered | undefined;
afterEach(async () => {
  await r?.unmount();
  r = undefined;
});

function Picker() {
  const [picked, setPicked] = useState('none');
  return (
    <>
      <Select items={['backup', 'restore', 'verify', 'quit'].map((v) => ({value: v, label: v}))} onChoose={(i) => setPicked(i.value)} />
      <Text>picked: {picked}</Text>
    </>
  );
}

describe('Select', () => {
  it('↓ ↓ Enter in one write picks the third item', async () => {
    r = await renderTree(<Picker />);
    await r.press(KEY.down + KEY.down + KEY.enter);
    expect(r.frame()).toContain('picked: verify');
  });
  it('keys one at a time give the same result, and ↑ at the top stays', async () => {
    r = await renderTree(<Picker />);
    await r.press(KEY.up);
    await r.press(KEY.down);
    await r.press(KEY.down);
    await r.press(KEY.enter);
    expect(r.frame()).toContain('picked: verify');
    expect(r.frame()).toContain('❯ verify');
  });
  it('scrolls a long list and marks more items', async () => {
    r = await renderTree(<Select items={Array.from({length: 20}, (_, i) => ({value: `v${i}`, label: `item ${i}`}))} visible={5} onChoose={() => {}} />);
    expect(r.frame()).toContain('↓ more');
    await r.press(KEY.down.repeat(7));
    expect(r.frame()).toContain('❯ item 7');
    expect(r.frame()).toContain('↑ more');
    expect(r.frame()).not.toContain('item 0');
  });
});

describe('Form', () => {
  function F() {
    const [out, setOut] = useState('');
    return (
      <>
        <Form
          fields={[
            {key: 'name', label: 'Name', kind: 'text'},
            {key: 'pw', label: 'Password', kind: 'secret'},
            {key: 'sec', label: 'Security', kind: 'choice', choices: [{value: 'starttls', label: 'STARTTLS'}, {value: 'tls', label: 'TLS'}, {value: 'none', label: 'none'}]},
          ]}
          onSubmit={(v) => setOut(JSON.stringify(v))}
        />
        <Text>out: {out}</Text>
      </>
    );
  }
  it('takes a burst of typed text, Enter, a secret, a choice and submits in order', async () => {
    r = await renderTree(<F />);
    await r.press(`my vm "ü";x${KEY.enter}s3cr3t${KEY.enter}${KEY.right}${KEY.right}${KEY.enter}`);
    expect(r.frame()).toContain('out: {"name":"my vm \\"ü\\";x","pw":"s3cr3t","sec":"none"}');
  });
  it('never shows a secret', async () => {
    r = await renderTree(<F />);
    await r.press(`n${KEY.enter}hunter2`);
    expect(r.frame()).not.toContain('hunter2');
    expect(r.frame()).toContain('•••••••');
  });
});

describe('q and ? in forms', () => {
  it('are typed in a text field and mean quit/help on a choice, in one burst', async () => {
    const {App} = await import('../../src/console/app/app.js');
    const {seeded} = await import('./fake-api.js');
    r = await renderTree(<App api={seeded()} first={{name: 'email'}} />);
    await r.waitFor('Recipients');
    // Focus starts on the "Send through" choice: ↓ to the host field, type "q?", ↑ back, "?".
    await r.press(`${KEY.down}q?${KEY.up}?`);
    expect(r.frame()).toContain('Help: Email');
    await r.press(KEY.esc);
    expect(r.frame()).toMatch(/SMTP host\s+q\?/);
    await r.press('q');
    await r.waitFor(/./);
    expect(r.exited()).toBe(true);
  });
});

describe('ProgressBar', () => {
  it('shows the bar and the percentage', async () => {
    r = await renderTree(<ProgressBar fraction={0.42} width={10} />);
    expect(r.frame()).toContain('████░░░░░░  42%');
  });
});
