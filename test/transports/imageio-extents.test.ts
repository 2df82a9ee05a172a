/** Pure parsing of imageio extents and ticket redaction (docs/reference/ovirt-backup-api.md §6.2). */
import {describe, expect, it} from 'vitest';
import {parseExtents} from '../../src/transports/imageio/extents.js';
import {redactTicketUrl} from '../../src/transports/imageio/redact.js';

describe('imageio extents', () => {
  it('parses the captured zero extents (§6.2) and keeps zero/hole', () => {
    const captured = [
      {start: 0, length: 1048576, zero: false, hole: false},
      {start: 1048576, length: 3145728, zero: true, hole: true},
      {start: 4194304, length: 131072, zero: false, hole: false},
      {start: 4325376, length: 62783488, zero: true, hole: false},
    ];
    expect(parseExtents(captured, 'zero', 64 * 2 ** 20)).toEqual(captured);
  });

  it('parses dirty extents; a missing zero (imageio < 2.2) is false', () => {
    expect(parseExtents([{start: 0, length: 65536, dirty: true}, {start: 65536, length: 65536, dirty: false, zero: true}], 'dirty'))
      .toEqual([{start: 0, length: 65536, dirty: true, zero: false}, {start: 65536, length: 65536, dirty: false, zero: true}]);
  });

  it('accepts numbers and booleans sent as strings', () => {
    expect(parseExtents([{start: '0', length: '512', zero: 'true', hole: 'false'}], 'zero')).toEqual([{start: 0, length: 512, zero: true, hole: false}]);
  });

  it('refuses gaps, overlaps, short coverage and garbage, so no data is silently skipped', () => {
    expect(() => parseExtents([{start: 0, length: 10, zero: false}, {start: 20, length: 10, zero: false}], 'zero')).toThrow(/gap/);
    expect(() => parseExtents([{start: 0, length: 10, zero: false}, {start: 5, length: 10, zero: false}], 'zero')).toThrow(/overlap/);
    expect(() => parseExtents([{start: 0, length: 10, zero: false}], 'zero', 20)).toThrow(/cover 10/);
    expect(() => parseExtents({extents: []}, 'zero')).toThrow(/not a JSON list/);
    expect(() => parseExtents([{start: 0, length: -1}], 'zero')).toThrow(/bad extent/);
  });

  it('redacts the ticket in imageio URLs', () => {
    expect(redactTicketUrl('https://host1:54322/images/6c2d1b1e-aaaa?flush=n')).toBe('https://host1:54322/images/<ticket>?flush=n');
    expect(redactTicketUrl('https://engine:54323/images/abc/extents')).toBe('https://engine:54323/images/<ticket>/extents');
    expect(redactTicketUrl('https://engine:54323/images/*')).toBe('https://engine:54323/images/*');
  });
});
