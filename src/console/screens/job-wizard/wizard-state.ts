/**
 * The New Backup Job wizard as a pure reducer, in the order of Veeam's wizard that
 * administrators know: name → VMs → repository and retention → schedule → guest consistency →
 * notifications → summary. Each step's values are kept when going back; `toJob` builds the job
 * the daemon validates and `fromJob` fills the wizard for editing.
 */
import type {JobConfig} from '../../../config/schema.js';
import type {Schedule} from '../../../config/schedule.js';
import {emptySelection, selectionEmpty, type Selection} from './vm-picker-state.js';

export const STEPS = ['name', 'vms', 'storage', 'schedule', 'guest', 'notify', 'summary'] as const;
export type StepName = (typeof STEPS)[number];
export const STEP_TITLES: Record<StepName, string> = {
  name: 'Name',
  vms: 'Virtual machines',
  storage: 'Storage',
  schedule: 'Schedule',
  guest: 'Guest processing',
  notify: 'Notifications',
  summary: 'Summary',
};

export interface WizardState {
  step: number;
  /** Text values of the form steps, by field key. */
  values: Record<string, string>;
  connection?: string;
  selection: Selection;
  /** Set when Esc on the first step leaves the wizard. */
  left: boolean;
  /** Why the step cannot be left yet. */
  problem?: string;
  editing?: string;
  /** The step was opened from the summary: Enter returns there. */
  backToSummary?: boolean;
}

export type WizardAction =
  | {type: 'values'; values: Record<string, string>}
  | {type: 'next'; values?: Record<string, string>}
  | {type: 'back'}
  | {type: 'connection'; id: string}
  | {type: 'selection'; selection: Selection}
  /** Jump to a step (the summary's "change …", or Tab's "defaults → summary"); `back` returns to the summary after it. */
  | {type: 'goto'; step: number; fromSummary?: boolean};

export const DEFAULTS: Record<string, string> = {
  name: '',
  description: '',
  restorePoints: '14',
  days: '',
  gfs: 'no',
  weekly: '4',
  monthly: '12',
  yearly: '1',
  preset: 'daily',
  at: '22:00',
  every: '4',
  monthDay: '1',
  cron: '0 22 * * 1-5',
  guestConsistency: 'yes',
  retries: '3',
  retryWait: '10',
  bandwidth: '',
  verifyBoot: 'no',
  onSuccess: 'yes',
  onWarning: 'yes',
  onFailure: 'yes',
  recipients: '',
};

export function initWizard(values: Record<string, string> = {}, selection = emptySelection(), connection?: string, editing?: string): WizardState {
  return {step: 0, values: {...DEFAULTS, ...values}, selection, connection, left: false, editing};
}

export function wizardReducer(s: WizardState, a: WizardAction): WizardState {
  switch (a.type) {
    case 'values':
      return {...s, values: {...s.values, ...a.values}};
    case 'connection':
      return s.connection === a.id ? s : {...s, connection: a.id, selection: emptySelection()};
    case 'selection':
      return {...s, selection: a.selection};
    case 'back':
      return s.step === 0 ? {...s, left: true} : {...s, step: s.step - 1, problem: undefined};
    case 'goto': {
      // Forward only over steps that are complete (their defaults are), back anywhere.
      const target = Math.max(0, Math.min(a.step, STEPS.length - 1));
      for (let i = s.step; i < target; i++) {
        const problem = stepProblem(STEPS[i]!, s);
        if (problem) return {...s, step: i, problem};
      }
      return {...s, step: target, problem: undefined, backToSummary: a.fromSummary === true};
    }
    case 'next': {
      const next = {...s, values: {...s.values, ...(a.values ?? {})}};
      const problem = stepProblem(STEPS[s.step]!, next);
      if (problem) return {...next, problem};
      // A step changed from the summary goes back to it.
      if (s.backToSummary) return {...next, step: STEPS.length - 1, problem: undefined, backToSummary: false};
      return {...next, step: Math.min(s.step + 1, STEPS.length - 1), problem: undefined};
    }
  }
}

/** What is missing before a step can be left, in words (the daemon validates the whole job again). */
export function stepProblem(step: StepName, s: WizardState): string | undefined {
  const v = s.values;
  if (step === 'name' && !v.name?.trim()) return 'Give the job a name.';
  if (step === 'vms' && !s.connection) return 'Add a connection first (menu → Connections).';
  if (step === 'vms' && selectionEmpty(s.selection)) return 'Pick at least one VM, cluster or tag (Space).';
  if (step === 'storage' && !v.repository) return 'Add a repository first (menu → Repositories).';
  if (step === 'storage' && v.restorePoints && !/^\d+$/.test(v.restorePoints)) return 'Restore points to keep: a whole number.';
  return undefined;
}

export function scheduleOf(v: Record<string, string>): Schedule {
  switch (v.preset) {
    case 'none':
      return {kind: 'none'};
    case 'weekdays':
      return {kind: 'daily', at: v.at ?? '22:00', days: ['mon', 'tue', 'wed', 'thu', 'fri']};
    case 'hours':
      return {kind: 'hours', every: Number(v.every) || 4, minute: 0};
    case 'monthly':
      return {kind: 'monthly', day: Number(v.monthDay) || 1, at: v.at ?? '22:00'};
    case 'cron':
      return {kind: 'cron', expression: v.cron ?? ''};
    default:
      return {kind: 'daily', at: v.at ?? '22:00'};
  }
}

const num = (x: string | undefined) => (x && /^\d+$/.test(x.trim()) ? Number(x) : undefined);
const list = (x: string | undefined) =>
  (x ?? '')
    .split(/[\s,;]+/)
    .map((r) => r.trim())
    .filter(Boolean);

export function toJob(s: WizardState, id: string): Record<string, unknown> {
  const v = s.values;
  const gfs = v.gfs === 'yes' ? {gfs: {weekly: num(v.weekly) ?? 0, monthly: num(v.monthly) ?? 0, yearly: num(v.yearly) ?? 0}} : {};
  return {
    id,
    name: v.name?.trim(),
    description: v.description ?? '',
    source: {connection: s.connection, ...s.selection},
    repository: v.repository,
    retention: {...(num(v.restorePoints) ? {restorePoints: num(v.restorePoints)} : {}), ...(num(v.days) ? {days: num(v.days)} : {}), ...gfs},
    schedule: scheduleOf(v),
    guestConsistency: v.guestConsistency === 'yes',
    retries: {count: num(v.retries) ?? 3, waitMinutes: num(v.retryWait) ?? 10},
    ...(v.bandwidth?.trim() ? {bandwidthLimitMBps: Number(v.bandwidth)} : {}),
    // The wait and the connection are kept as the job had them (the defaults for a new job).
    restoreVerification: {
      enabled: v.verifyBoot === 'yes',
      ...(num(v.verifyTimeout) ? {timeoutSeconds: num(v.verifyTimeout)} : {}),
      ...(v.verifyConnection ? {connection: v.verifyConnection} : {}),
    },
    notification: {
      recipients: list(v.recipients),
      onSuccess: v.onSuccess === 'yes',
      onWarning: v.onWarning === 'yes',
      onFailure: v.onFailure === 'yes',
      webhooks: Object.keys(v)
        .filter((k) => k.startsWith('webhook:') && v[k] === 'yes')
        .map((k) => k.slice('webhook:'.length)),
      // What the wizard does not show is kept as the job had it (the defaults for a new job).
      ...(v.onlyLastAttempt ? {onlyLastAttempt: v.onlyLastAttempt === 'yes'} : {}),
      ...(v.subject ? {subject: v.subject} : {}),
    },
  };
}

export function fromJob(j: JobConfig): WizardState {
  const sc = j.schedule;
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const values: Record<string, string> = {
    name: j.name,
    description: j.description,
    repository: j.repository,
    restorePoints: j.retention.restorePoints ? String(j.retention.restorePoints) : '',
    days: j.retention.days ? String(j.retention.days) : '',
    gfs: yes(!!j.retention.gfs),
    ...(j.retention.gfs ? {weekly: String(j.retention.gfs.weekly), monthly: String(j.retention.gfs.monthly), yearly: String(j.retention.gfs.yearly)} : {}),
    preset: sc.kind === 'daily' ? (sc.days?.length === 5 && !sc.days.includes('sat') && !sc.days.includes('sun') ? 'weekdays' : 'daily') : sc.kind,
    ...(sc.kind === 'daily' || sc.kind === 'monthly' ? {at: sc.at} : {}),
    ...(sc.kind === 'monthly' ? {monthDay: String(sc.day)} : {}),
    ...(sc.kind === 'hours' ? {every: String(sc.every)} : {}),
    ...(sc.kind === 'cron' ? {cron: sc.expression} : {}),
    guestConsistency: yes(j.guestConsistency),
    retries: String(j.retries.count),
    retryWait: String(j.retries.waitMinutes),
    bandwidth: j.bandwidthLimitMBps ? String(j.bandwidthLimitMBps) : '',
    verifyBoot: yes(j.restoreVerification.enabled),
    verifyTimeout: String(j.restoreVerification.timeoutSeconds),
    ...(j.restoreVerification.connection ? {verifyConnection: j.restoreVerification.connection} : {}),
    onSuccess: yes(j.notification.onSuccess),
    onWarning: yes(j.notification.onWarning),
    onFailure: yes(j.notification.onFailure),
    recipients: j.notification.recipients.join(', '),
    onlyLastAttempt: yes(j.notification.onlyLastAttempt),
    subject: j.notification.subject,
    ...Object.fromEntries((j.notification.webhooks ?? []).map((id) => [`webhook:${id}`, 'yes'])),
  };
  if (!('connection' in j.source)) throw new Error(`job ${j.id} is a copy job: the wizard makes backup jobs`);
  const {connection, ...sel} = j.source;
  return initWizard(values, sel, connection, j.id);
}
