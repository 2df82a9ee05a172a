/**
 * Instant recoveries: the VMs running from a backup (their disks read from the repository while
 * they run). Enter on one: "Finish: move to storage" (a directory on the host, empty for where
 * its overlays are; the VM keeps running and is defined there afterwards) or "Stop and discard"
 * (asks first: what the VM wrote is lost). While a move runs the list shows its progress, rate
 * and time left, refreshed every second.
 */
import {Box, Text} from 'ink';
import {useEffect, useRef, useState} from 'react';
import type {InstantRecoveryInfo} from '../../api.js';
import {Confirm} from '../../components/confirm/view.js';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {ProgressBar} from '../../components/progress-bar/view.js';
import {Select} from '../../components/select/view.js';
import {bytes, duration, rate, timeLeft, when} from '../../format.js';
import {useEvents} from '../../live/use-events.js';
import {useApi} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {ScreenProps} from '../types.js';

/** Bytes per second of each move, from the last two looks at its progress. */
function useRates(list: InstantRecoveryInfo[] | undefined): Record<string, number> {
  const last = useRef(new Map<string, {at: number; done: number}>());
  const [rates, setRates] = useState<Record<string, number>>({});
  useEffect(() => {
    const now = Date.now();
    const next: Record<string, number> = {};
    for (const i of list ?? []) {
      if (!i.progress) continue;
      const prev = last.current.get(i.id);
      if (prev && now > prev.at && i.progress.doneBytes >= prev.done) next[i.id] = ((i.progress.doneBytes - prev.done) * 1000) / (now - prev.at);
      last.current.set(i.id, {at: now, done: i.progress.doneBytes});
    }
    setRates(next);
  }, [list]);
  return rates;
}

export function phaseText(i: InstantRecoveryInfo, bytesPerSec?: number): string {
  if (i.phase === 'migrating' && i.progress) {
    const left = timeLeft(i.progress.doneBytes, i.progress.totalBytes, bytesPerSec ?? 0);
    return `moving to storage ${bytes(i.progress.doneBytes)} of ${bytes(i.progress.totalBytes)} · ${rate(bytesPerSec)} · ${left === undefined ? '–' : duration(left)} left`;
  }
  if (i.phase === 'migrating') return 'moving to storage';
  if (i.phase === 'starting') return 'starting';
  return i.error ? `⚠ runs from the backup · ${i.error}` : 'runs from the backup';
}

export function InstantRecoveries(props: ScreenProps) {
  const api = useApi();
  const action = useAction();
  const [picked, setPicked] = useState<string | undefined>();
  const [mode, setMode] = useState<'actions' | 'finish' | 'stop'>('actions');
  const data = useLoad(() => api.instantRecoveries());
  useEvents((e) => {
    if (e.type === 'session') data.reload();
  });
  const moving = data.data?.some((i) => i.phase !== 'running') ?? false;
  const reload = data.reload;
  useEffect(() => {
    if (!moving) return;
    const t = setInterval(reload, 1000);
    return () => clearInterval(t);
  }, [moving, reload]);
  const rates = useRates(data.data);
  if (data.error && !data.data) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Text color="cyan">… loading</Text>;
  const list = data.data;
  const i = list.find((x) => x.id === picked);
  const leave = () => {
    setPicked(undefined);
    setMode('actions');
  };
  if (picked && !i) {
    // Finished or stopped meanwhile: back to the list, with what the last action said.
    return (
      <Box flexDirection="column">
        <Select items={[{value: 'back', label: '← Back to the list'}]} onChoose={leave} />
        <ActionMessage state={action.state} />
      </Box>
    );
  }
  if (i) {
    const head = (
      <Box flexDirection="column">
        <Text bold wrap="truncate-end">
          {i.name} <Text dimColor>on {i.host} · from {i.vmName} of {when(i.restorePointTime)}{i.network ? '' : ' · no network'}</Text>
        </Text>
        <Text wrap="truncate-end">{phaseText(i, rates[i.id])}</Text>
        {i.phase === 'migrating' && i.progress ? <ProgressBar fraction={i.progress.totalBytes ? i.progress.doneBytes / i.progress.totalBytes : 0} width={Math.max(10, props.width - 10)} /> : null}
        <Text dimColor wrap="truncate-end">Its writes: {i.disks.map((d) => d.overlay).join(', ')}</Text>
      </Box>
    );
    if (mode === 'stop')
      return (
        <Box flexDirection="column">
          {head}
          <Confirm
            question={`Stop and discard ${i.name}?`}
            detail="The VM is powered off and removed with everything it wrote since it started; the restore point stays as it is."
            yes="Yes, discard it"
            onNo={() => setMode('actions')}
            onYes={() => {
              setMode('actions');
              void action.run(`Stopping ${i.name}`, () => api.stopInstant(i.id), () => `${i.name} was stopped and discarded.`).then(() => data.reload());
            }}
          />
          <ActionMessage state={action.state} />
        </Box>
      );
    if (mode === 'finish')
      return (
        <Box flexDirection="column">
          {head}
          <Text wrap="wrap">Its disks are copied to new images on the host while it runs; then it runs from them and is defined there. Empty: beside its overlays.</Text>
          <Form
            fields={[{key: 'storage', label: 'Storage directory', kind: 'text', placeholder: i.storage}]}
            initial={{}}
            onSubmit={(v) => {
              setMode('actions');
              void action.run(`Moving ${i.name} to storage`, () => api.finishInstant(i.id, v.storage?.trim() || undefined), () => `Moving ${i.name} to storage: the list shows how far.`).then(() => data.reload());
            }}
          />
          <ActionMessage state={action.state} />
        </Box>
      );
    return (
      <Box flexDirection="column">
        {head}
        {i.phase === 'running' ? (
          <Select
            key={`actions:${i.id}`}
            items={[
              {value: 'finish', label: 'Finish: move it to storage', hint: 'it keeps running'},
              {value: 'stop', label: 'Stop and discard it', hint: 'asks first'},
              {value: 'back', label: '← Back to the list'},
            ]}
            onChoose={(item) => (item.value === 'back' ? leave() : setMode(item.value as 'finish' | 'stop'))}
          />
        ) : (
          <Select key={`wait:${i.id}`} items={[{value: 'back', label: '← Back to the list'}]} onChoose={leave} />
        )}
        <ActionMessage state={action.state} />
      </Box>
    );
  }
  return (
    <Box flexDirection="column">
      {list.length === 0 ? (
        <Text wrap="wrap">No VM runs from a backup. Restore → a restore point → &quot;Start it from the backup now&quot; starts one within seconds.</Text>
      ) : (
        <Select
          items={list.map((x) => ({value: x.id, label: x.name, hint: `${x.host} · ${phaseText(x, rates[x.id])}`}))}
          visible={props.height - 3}
          onChoose={(item) => setPicked(item.value)}
        />
      )}
      <ActionMessage state={action.state} />
    </Box>
  );
}
