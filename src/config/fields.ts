/**
 * Field rules shared by the configuration schemas: ids, names, times of day, weekdays.
 *
 * Every message starts with what is wrong ("must be HH:MM"); the parser (parse.ts) puts the
 * field's path in front, so an operator reads "jobs.schedule.at: must be HH:MM".
 */
import {z} from 'zod';

/** Ids appear in API paths and file names: letters, digits, '.', '_', '-'. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const id = () =>
  z
    .string({error: 'must be text'})
    .regex(ID_PATTERN, {error: "must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit"});

/**
 * A display name. Jobs follow the rule of the Veeam wizard administrators know: at most 40
 * characters and none of the characters that break file names, shells or reports.
 */
const FORBIDDEN_NAME_CHARS = /[~"#%&*:<>!?/\\{|}.'$`]/;

export const jobName = () =>
  z
    .string({error: 'must be text'})
    .trim()
    .min(1, {error: 'is required'})
    .max(40, {error: 'must be at most 40 characters'})
    .refine((s) => !FORBIDDEN_NAME_CHARS.test(s), {error: "must not contain any of ~ \" # % & * : < > ! ? / \\ { | } . ' $ `"});

export const displayName = () =>
  z
    .string({error: 'must be text'})
    .trim()
    .min(1, {error: 'is required'})
    .max(100, {error: 'must be at most 100 characters'})
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), {error: 'must not contain control characters'});

export const description = () => z.string({error: 'must be text'}).max(1024, {error: 'must be at most 1024 characters'}).default('');

export const timeOfDay = () => z.string({error: 'must be HH:MM'}).regex(/^([01]\d|2[0-3]):[0-5]\d$/, {error: 'must be HH:MM (24-hour, e.g. 22:30)'});

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];
export const weekday = () => z.enum(WEEKDAYS, {error: 'must be one of sun, mon, tue, wed, thu, fri, sat'});

export const absolutePath = () =>
  z
    .string({error: 'must be an absolute path'})
    .min(2, {error: 'must be an absolute path'})
    .regex(/^\//, {error: 'must be an absolute path (starting with /)'})
    .refine((p) => !p.includes('\0'), {error: 'must not contain a NUL character'});

export const whole = (min: number, max: number) =>
  z
    .number({error: `must be a whole number from ${min} to ${max}`})
    .int({error: `must be a whole number from ${min} to ${max}`})
    .min(min, {error: `must be a whole number from ${min} to ${max}`})
    .max(max, {error: `must be a whole number from ${min} to ${max}`});

/** A secret as stored; the API shows REDACTED instead (secrets.ts). */
export const secret = () => z.string({error: 'must be text'});
