/**
 * Normalises what an administrator types as the engine address ("engine.example.com",
 * "https://engine/ovirt-engine/api", ...) to the engine base `https://host[:port]/ovirt-engine`.
 */
import {ExitCode, UserError} from '../../util/errors.js';

export function normalizeEngineUrl(input: string): string {
  let text = input.trim();
  if (!/^[a-z]+:\/\//i.test(text)) text = `https://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(`The engine address "${input}" is not a valid URL.`, {
      hint: 'Give the engine as https://engine.example.com (the /ovirt-engine path is added when missing).',
      exitCode: ExitCode.invalidInput,
    });
  }
  if (url.protocol !== 'https:') {
    throw new UserError(`The engine address "${input}" does not use https.`, {
      hint: 'The engine API is only reached over https; give https://engine.example.com.',
      exitCode: ExitCode.invalidInput,
    });
  }
  let path = url.pathname.replace(/\/+$/, '');
  path = path.replace(/\/api(\/v4)?$/, '');
  if (!path.endsWith('/ovirt-engine')) path = `${path}/ovirt-engine`;
  return `${url.origin}${path}`;
}
