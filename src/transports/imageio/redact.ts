/**
 * An imageio URL carries the transfer ticket, a capability that grants access to the disk
 * while the transfer lives. Errors and logs name the URL with the ticket hidden.
 */
export function redactTicketUrl(url: string): string {
  return url.replace(/(\/images\/)([^/?#]+)/, (_m, p: string, t: string) => (t === '*' ? `${p}*` : `${p}<ticket>`));
}
