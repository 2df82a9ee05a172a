import {describe, expect, it} from 'vitest';
import {describeSchedule, nextRuns, toCron, type Schedule} from '../../src/config/index.js';

// Local times throughout: schedules run in the appliance's time zone.
const from = new Date(2026, 10, 23, 12, 0); // Monday 23 Nov 2026, 12:00

describe('schedules', () => {
  it('daily at a time', () => {
    const s: Schedule = {kind: 'daily', at: '22:30'};
    expect(toCron(s)).toBe('30 22 * * *');
    expect(describeSchedule(s)).toBe('At 22:30');
    expect(nextRuns(s, from, 3)).toEqual([new Date(2026, 10, 23, 22, 30), new Date(2026, 10, 24, 22, 30), new Date(2026, 10, 25, 22, 30)]);
  });

  it('daily on weekdays only', () => {
    const s: Schedule = {kind: 'daily', at: '01:00', days: ['sat', 'mon']};
    expect(toCron(s)).toBe('0 1 * * 1,6');
    expect(describeSchedule(s)).toMatch(/Monday and Saturday/);
    expect(nextRuns(s, from, 2)).toEqual([new Date(2026, 10, 28, 1, 0), new Date(2026, 10, 30, 1, 0)]);
  });

  it('monthly on a day', () => {
    const s: Schedule = {kind: 'monthly', day: 5, at: '03:15'};
    expect(nextRuns(s, from, 2)).toEqual([new Date(2026, 11, 5, 3, 15), new Date(2027, 0, 5, 3, 15)]);
    expect(describeSchedule(s)).toMatch(/03:15.*day 5/);
  });

  it('every N hours', () => {
    const s: Schedule = {kind: 'hours', every: 6, minute: 10};
    expect(toCron(s)).toBe('10 */6 * * *');
    expect(nextRuns(s, from, 3)).toEqual([new Date(2026, 10, 23, 12, 10), new Date(2026, 10, 23, 18, 10), new Date(2026, 10, 24, 0, 10)]);
  });

  it('cron expressions, strictly after the start instant', () => {
    const s: Schedule = {kind: 'cron', expression: '0 12 * * 1-5'};
    expect(nextRuns(s, from, 1)).toEqual([new Date(2026, 10, 24, 12, 0)]);
    expect(describeSchedule(s)).toBe('At 12:00, Monday through Friday');
  });

  it('no schedule never runs', () => {
    expect(nextRuns({kind: 'none'}, from, 3)).toEqual([]);
    expect(describeSchedule({kind: 'none'})).toMatch(/manually/);
  });
});
