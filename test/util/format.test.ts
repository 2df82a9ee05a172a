import {describe, expect, it} from 'vitest';
import {formatBytes, formatDuration, formatRatio, formatTable} from '../../src/util/format.js';

describe('format', () => {
  it('formats bytes with binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.00 GiB');
    expect(formatBytes(150 * 1024 ** 2)).toBe('150 MiB');
  });
  it('formats durations', () => {
    expect(formatDuration(250)).toBe('250 ms');
    expect(formatDuration(65_000)).toBe('1m 05s');
    expect(formatDuration(3_720_000)).toBe('1h 02m');
  });
  it('formats ratios and tables', () => {
    expect(formatRatio(2.345)).toBe('2.3x');
    expect(formatRatio(Number.NaN)).toBe('1.0x');
    expect(formatTable(['a', 'bb'], [['xxx', 'y']])).toBe('a    bb\nxxx  y');
  });
});
