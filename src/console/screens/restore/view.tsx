/**
 * The restore wizard's screen. Restore points come from GET /repositories/:id/restore-points
 * and the restore starts with POST /restores (both assumed, see api.ts); its progress arrives
 * as events tagged with the returned id. A daemon without these says so inline.
 */
import {Box, Text} from 'ink';
import {useEffect, useReducer} from 'react';
import {useEscape} from '../../app/key-capture.js';
import {Form} from '../../components/form/view.js';
import {ActionMessage, ErrorMessage} from '../../components/message/view.js';
import {ProgressBar} from '../../components/progress-bar/view.js';
import {Select} from '../../components/select/view.js';
import {StatusLine} from '../../components/status/view.js';
import {bytes, rate, when} from '../../format.js';
import {sessionTotalsOf} from '../../live/progress-state.js';
import {useEvents} from '../../live/use-events.js';
import {useApi, useNavigate} from '../../router/context.js';
import {useAction, useLoad} from '../../use-load.js';
import type {RestorePlanReply} from '../../api.js';
import type {ScreenProps} from '../types.js';
import {initRestore, instantRequest, request, restoreReducer, vmsOf, type RestoreState, type TargetKind} from './restore-state.js';

export function RestoreWizard(props: ScreenProps) {
  const api = useApi();
  const nav = useNavigate();
  const [s, dispatch] = useReducer(restoreReducer, props.params.repository, initRestore);
  useEscape(() => dispatch({type: 'back'}));
  useEffect(() => {
    if (s.left) nav({type: 'pop'});
  }, [s.left, nav]);
  const repos = useLoad(() => api.list('repositories'));
  // libvirt (Morpheus) connections: an oVirt VM's restore point can start on one of their hosts.
  const libvirt = useLoad(async () => (await api.list('connections')).filter((c) => c.kind === 'morpheus').map((c) => ({id: String(c.id), name: String(c.name)})));
  const repository = s.repository ?? (repos.data?.length === 1 ? String(repos.data[0]!.id) : undefined);
  // When the repository is chosen, useLoad drops the empty answer of "none chosen yet": it must
  // not read as "this repository has no restore points" while the list loads.
  const points = useLoad(async () => (repository ? api.restorePoints(repository) : []), [repository]);
  // Opened on one restore point ("Restore from here" in the repository's restore points): start at "where to".
  const preset = props.params.point;
  useEffect(() => {
    if (!preset || s.step !== 'vm' || !points.data) return;
    const p = points.data.find((x) => x.id === preset);
    if (!p) return;
    dispatch({type: 'vm', id: p.vmId});
    dispatch({type: 'point', point: p});
    // Once: going back from "where to" shows the VM's other restore points.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [preset, points.data]);
  // What the restore will do, asked of the daemon on the summary step (it refuses there what the
  // restore would refuse: a name in use, a VM that is running, a file that exists).
  const planRequest = s.step === 'summary' && repository ? request({...s, repository}) : undefined;
  const plan = useLoad(async () => (planRequest ? api.planRestore(planRequest) : null), [JSON.stringify(planRequest ?? null)]);
  const action = useAction();
  const title = <Text bold>Restore · {s.step === 'vm' ? 'which VM' : s.step === 'point' ? 'which restore point' : s.step === 'target' ? 'where to' : s.step === 'details' ? 'details' : s.step === 'summary' ? 'summary' : 'progress'}</Text>;
  if (repos.error) return <ErrorMessage error={repos.error} />;
  if (!repos.data) return <Text color="cyan">… loading</Text>;
  if (!repository) {
    if (repos.data.length === 0) return <Text>No repository yet: add one from the menu (Repositories).</Text>;
    return (
      <Box flexDirection="column">
        <Text bold>Restore · from which repository</Text>
        <Select items={repos.data.map((r) => ({value: String(r.id), label: String(r.name), hint: String(r.path)}))} onChoose={(item) => dispatch({type: 'repository', id: item.value})} />
      </Box>
    );
  }
  if (points.error) return <Box flexDirection="column">{title}<ErrorMessage error={points.error} /></Box>;
  if (!points.data) return <Text color="cyan">… reading restore points</Text>;
  const startInstant = async (st: RestoreState) => {
    const req = instantRequest({...st, repository});
    if (!req) return;
    const r = await action.run(
      `Starting ${req.name ?? `${st.point?.vmName ?? 'the VM'}-instant`} from the backup`,
      () => api.startInstant(req),
      (v) => `${v.name} runs on ${v.host} from the backup (${(v.startedInMs / 1000).toFixed(1)} s). Finish or stop it from the dashboard (i).`,
    );
    if (r.ok) nav({type: 'replace', route: {name: 'instant'}});
  };
  const start = async (st: RestoreState) => {
    const req = request({...st, repository});
    if (!req) return;
    dispatch({type: 'confirm'});
    const r = await action.run('Starting the restore', () => api.startRestore(req));
    if (r.ok) dispatch({type: 'started', id: r.value.id});
  };
  let body;
  switch (s.step) {
    case 'vm': {
      const vms = vmsOf(points.data);
      body = vms.length ? (
        <Select
          items={vms.map((v) => ({value: v.id, label: v.name, hint: `${v.count} point(s), latest ${when(v.latest)}${v.exists ? '' : ' · no longer exists'}`}))}
          visible={props.height - 3}
          onChoose={(item) => dispatch({type: 'vm', id: item.value})}
        />
      ) : (
        <Text>This repository has no restore points yet.</Text>
      );
      break;
    }
    case 'point': {
      const list = points.data.filter((p) => p.vmId === s.vmId).sort((a, b) => (a.time < b.time ? 1 : -1));
      body = (
        <Select
          items={list.map((p) => ({value: p.id, label: `${when(p.time)}  ${p.type.padEnd(11)} ${bytes(p.sizeBytes).padStart(9)}`}))}
          visible={props.height - 3}
          onChoose={(item) => dispatch({type: 'point', point: list.find((p) => p.id === item.value)!})}
        />
      );
      break;
    }
    case 'target': {
      const gone = s.point?.vmExists === false;
      const items: {value: TargetKind; label: string; hint?: string}[] = [
        ...(gone ? [] : [{value: 'original' as const, label: 'Whole VM to its original place', hint: 'overwrites the VM'}]),
        {value: 'new', label: 'Whole VM as a new VM', hint: 'new name, host, cluster, storage'},
        {value: 'existing-vm', label: 'Chosen disks to an existing VM'},
        {value: 'files', label: 'Chosen disks to image files', hint: 'qcow2 or raw'},
        {value: 'browse' as TargetKind, label: 'Browse and copy files', hint: 'file-level restore, nothing restored first'},
        // Instant recovery: libvirt hosts start a VM from its restore point (a libvirt VM's, or an oVirt VM's from its OVF).
        ...(s.point?.platform === 'libvirt' ? [{value: 'instant' as const, label: 'Start it from the backup now', hint: 'runs in seconds; finish moves it to storage'}] : []),
        // Cross-platform: an oVirt VM started on a libvirt host, its hardware from the OVF.
        ...(s.point?.platform === 'ovirt' && libvirt.data?.length ? [{value: 'instant' as const, label: 'Start it on a libvirt host now', hint: 'from the backup, hardware from its OVF'}] : []),
      ];
      body = (
        <Box flexDirection="column">
          {gone ? <Text color="yellow">⚠ The VM no longer exists: restore it as a new VM or to files.</Text> : null}
          <Select
            items={items}
            onChoose={(item) =>
              item.value === 'browse'
                ? nav({type: 'push', route: {name: 'files', params: {repository, point: s.point!.id}}})
                : dispatch({type: 'target', target: item.value as TargetKind})
            }
          />
        </Box>
      );
      break;
    }
    case 'details': {
      const disks = s.point?.disks ?? [];
      // A libvirt VM's UEFI variable store (key 'nvram') is not a disk: it replaces an existing VM's
      // UEFI variables only when chosen, so it starts unchosen there.
      const diskFields = disks.map((d) => ({key: `disk:${d.key}`, label: (d.key === 'nvram' ? 'UEFI vars (nvram)' : `Disk ${d.name}`).slice(0, 20), kind: 'toggle' as const}));
      const initial = Object.fromEntries(disks.map((d) => [`disk:${d.key}`, d.key === 'nvram' && s.target === 'existing-vm' ? 'no' : 'yes']));
      const submit = (v: Record<string, string>) => {
        const chosen = disks.filter((d) => v[`disk:${d.key}`] === 'yes').map((d) => d.key);
        const rest = Object.fromEntries(Object.entries(v).filter(([k]) => !k.startsWith('disk:')));
        dispatch({type: 'details', values: {...rest, ...(s.target !== 'new' && disks.length ? {disks: chosen.join(',')} : {})}});
      };
      body =
        s.target === 'instant' ? (
          <Form
            key="instant"
            fields={[
              {key: 'name', label: 'VM name', kind: 'text', placeholder: `(empty: ${s.point?.vmName ?? ''}-instant)`},
              ...(s.point?.platform === 'ovirt'
                ? [{key: 'connection', label: 'libvirt hosts', kind: 'choice' as const, choices: (libvirt.data ?? []).map((c) => ({value: c.id, label: c.name}))}]
                : []),
              {key: 'host', label: 'Host', kind: 'text', placeholder: s.point?.platform === 'ovirt' ? '(its first host)' : '(where it ran)'},
              {key: 'storage', label: 'Overlay directory', kind: 'text', placeholder: '(where its disks were)'},
              {key: 'network', label: 'Network', kind: 'choice', choices: [{value: 'no', label: 'none (isolated)'}, {value: 'yes', label: 'as backed up'}]},
            ]}
            initial={{name: `${s.point?.vmName ?? 'vm'}-instant`, network: 'no', ...(s.point?.platform === 'ovirt' && libvirt.data?.[0] ? {connection: libvirt.data[0].id} : {})}}
            onSubmit={submit}
          />
        ) : s.target === 'new' ? (
          <Form
            key="new"
            fields={[
              {key: 'name', label: 'New VM name', kind: 'text', placeholder: `(empty: ${s.point?.vmName ?? ''}-restored)`},
              {key: 'host', label: 'Host', kind: 'text', placeholder: '(as before)'},
              {key: 'cluster', label: 'Cluster', kind: 'text', placeholder: '(as before)'},
              {key: 'storageDomain', label: 'Storage domain', kind: 'text', placeholder: '(as before)'},
            ]}
            initial={{name: `${s.point?.vmName ?? 'vm'}-restored`}}
            onSubmit={submit}
          />
        ) : s.target === 'existing-vm' ? (
          <Form key="vm" fields={[{key: 'vmId', label: 'Target VM id', kind: 'text'}, ...diskFields]} initial={initial} onSubmit={submit} />
        ) : (
          <Form
            key="files"
            fields={[{key: 'directory', label: 'Directory', kind: 'text', placeholder: 'e.g. /srv/restore'}, {key: 'format', label: 'Format', kind: 'choice', choices: [{value: 'qcow2', label: 'qcow2'}, {value: 'raw', label: 'raw'}]}, ...diskFields]}
            initial={initial}
            onSubmit={submit}
          />
        );
      break;
    }
    case 'summary': {
      const ir = instantRequest({...s, repository});
      if (ir) {
        body = (
          <Box flexDirection="column">
            <Text wrap="truncate-end">VM: {s.point?.vmName} · restore point {when(s.point?.time)} ({s.point?.type})</Text>
            <Text wrap="truncate-end">
              Starts: a new VM &quot;{ir.name ?? `${s.point?.vmName ?? 'vm'}-instant`}&quot;{ir.host ? ` on ${ir.host}` : ''} from the backup, {ir.network ? 'with its network' : 'without network'}
            </Text>
            <Text wrap="wrap" dimColor>
              Its disks are read from the repository while it runs; what it writes goes to overlays{ir.storage ? ` in ${ir.storage}` : ''}. The restore point does not change.
            </Text>
            <Select items={[{value: 'go', label: 'Start the VM now'}, {value: 'back', label: '← Back'}]} onChoose={(item) => (item.value === 'go' ? void startInstant(s) : dispatch({type: 'back'}))} />
          </Box>
        );
        break;
      }
      const req = request({...s, repository});
      const t = req?.target;
      body = (
        <Box flexDirection="column">
          <Text wrap="truncate-end">VM: {s.point?.vmName} · restore point {when(s.point?.time)} ({s.point?.type})</Text>
          <Text wrap="truncate-end">
            To:{' '}
            {t?.kind === 'original'
              ? 'its original place (the VM is overwritten)'
              : t?.kind === 'new'
                ? `a new VM "${t.name}"${t.host ? ` on ${t.host}` : ''}${t.cluster ? ` in ${t.cluster}` : ''}${t.storageDomain ? ` on ${t.storageDomain}` : ''}`
                : t?.kind === 'existing-vm'
                  ? `the existing VM ${t.vmId}`
                  : t?.kind === 'files'
                    ? `${t.format} files in ${t.directory}`
                    : ''}
          </Text>
          {req?.disks ? <Text>Disks: {req.disks.join(', ') || 'none chosen'}</Text> : null}
          {plan.error ? <ErrorMessage error={plan.error} /> : plan.data ? <PlanLines plan={plan.data} lines={Math.max(3, props.height - 9)} /> : <Text color="cyan">… checking what the restore will do</Text>}
          {plan.data || plan.error ? (
            <Select
              items={[...(plan.data ? [{value: 'go', label: 'Start the restore'}] : []), {value: 'back', label: '← Back'}]}
              onChoose={(item) => (item.value === 'go' ? void start(s) : dispatch({type: 'back'}))}
            />
          ) : null}
        </Box>
      );
      break;
    }
    case 'progress':
      body = <RestoreProgress operation={s.operation} />;
      break;
  }
  return (
    <Box flexDirection="column">
      {title}
      {/* Keyed by step: each step's Select starts with the focus on its first item. */}
      <Box key={s.step} flexDirection="column">
        {body}
      </Box>
      <ActionMessage state={action.state} />
    </Box>
  );
}

/** The plan in at most `lines` lines: what is replaced first (it matters most), then what is created, then notes. */
function PlanLines(props: {plan: RestorePlanReply; lines: number}) {
  const rows: {text: string; tone?: 'yellow' | 'gray'}[] = [
    ...props.plan.replaces.map((t) => ({text: `Replaces: ${t}`, tone: 'yellow' as const})),
    ...props.plan.creates.map((t) => ({text: `Creates: ${t}`})),
    ...props.plan.notes.map((t) => ({text: `Note: ${t}`, tone: 'gray' as const})),
  ];
  const shown = rows.length > props.lines ? rows.slice(0, props.lines - 1) : rows;
  return (
    <Box flexDirection="column">
      {shown.map((r, i) => (
        <Text key={i} wrap="truncate-end" color={r.tone === 'yellow' ? 'yellow' : undefined} dimColor={r.tone === 'gray'}>
          {r.text}
        </Text>
      ))}
      {shown.length < rows.length ? <Text dimColor>… and {rows.length - shown.length} more</Text> : null}
    </Box>
  );
}

function RestoreProgress(props: {operation?: string}) {
  const {progress} = useEvents();
  if (!props.operation) return null;
  const p = progress[props.operation];
  const t = sessionTotalsOf(p);
  const vms = Object.values(p?.vms ?? {});
  const done = p?.state && p.state !== 'running' ? p.state : vms.length && vms.every((v) => v.status) ? (vms.some((v) => v.status === 'failed') ? 'failed' : vms.some((v) => v.status === 'warning') ? 'warning' : 'success') : undefined;
  return (
    <Box flexDirection="column">
      <Text>
        <ProgressBar fraction={t.size ? t.done / t.size : 0} width={40} /> {rate(t.rate)}
      </Text>
      {vms.map((v) => (
        <Text key={v.id} wrap="truncate-end">
          {v.name}: {v.status ?? 'running'}
          {v.error ? ` – ${v.error}` : ''}
        </Text>
      ))}
      {done === 'success' ? <StatusLine tone="ok">Restore finished.</StatusLine> : done === 'failed' ? <StatusLine tone="error">The restore failed (see above).</StatusLine> : done ? <StatusLine tone="warning">Restore finished with warnings.</StatusLine> : null}
      <Text dimColor>Esc leaves this screen; the restore goes on in the daemon.</Text>
    </Box>
  );
}
