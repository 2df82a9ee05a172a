/**
 * SSH repository addresses (src/util/ssh-url.ts): what ssh and the far shell get from them must be
 * plain names — no option (a host or user starting with "-"), no "..", nothing a shell reads.
 */
import {describe, expect, it} from 'vitest';
import {ExitCode, UserError} from '../../src/util/errors.js';
import {isSshUrl, parseSshUrl, sshUrl} from '../../src/util/ssh-url.js';

describe('ssh:// repository addresses', () => {
  it('parse into user, host, port and an absolute path, and print back canonically', () => {
    expect(parseSshUrl('ssh://vmbackup@b.example.com/srv/vmbackup/copy/')).toEqual({user: 'vmbackup', host: 'b.example.com', port: 22, path: '/srv/vmbackup/copy'});
    expect(parseSshUrl('ssh://root@10.0.0.7:2222/data')).toEqual({user: 'root', host: '10.0.0.7', port: 2222, path: '/data'});
    const v6 = parseSshUrl('ssh://backup@[fd00::7]:2200/srv/copy')!;
    expect(v6).toEqual({user: 'backup', host: 'fd00::7', port: 2200, path: '/srv/copy'});
    expect(sshUrl(v6)).toBe('ssh://backup@[fd00::7]:2200/srv/copy');
    expect(sshUrl(parseSshUrl('ssh://a@h:22/x')!)).toBe('ssh://a@h/x');
    expect(isSshUrl('/srv/repo')).toBe(false);
    expect(parseSshUrl('/srv/repo')).toBeUndefined();
  });

  it('refuse what ssh or the far side could read as something else', () => {
    for (const [text, why] of [
      ['ssh://b.example.com/srv/copy', /USER@HOST/],
      ['ssh://-oProxyCommand=x@h/srv', /not a user name/],
      ['ssh://root@-oProxyCommand=x/srv', /not a host name/],
      ['ssh://root@h:0/srv', /not a port/],
      ['ssh://root@h:70000/srv', /not a port/],
      ['ssh://root@h/', /must name a directory/],
      ['ssh://root@h/srv/../etc', /"\.\." is not allowed/],
      ['ssh://root@h/srv/$(reboot)', /is not allowed/],
      ['ssh://root@h/srv/a b', /is not allowed/],
      ['ssh://root@h/srv/a;rm', /is not allowed/],
    ] as const) {
      const err = (() => {
        try {
          parseSshUrl(text);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, text).toBeInstanceOf(UserError);
      expect((err as UserError).exitCode).toBe(ExitCode.invalidInput);
      expect((err as Error).message, text).toMatch(why);
    }
  });
});
