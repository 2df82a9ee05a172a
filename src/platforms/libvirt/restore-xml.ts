/**
 * Rewrites a saved domain XML for a restore as a new VM (docs/reference/libvirt-backup.md §7.2): new name,
 * no <uuid> (libvirt assigns one) unless the restore replaces the original, new MAC addresses,
 * restored disks pointing at their new image files (type='file', the restored format, no
 * backing chain), and disks that are not restored removed (they would otherwise share the
 * original VM's images). Everything else is kept as it was, element order included.
 */
import {XMLBuilder, XMLParser} from 'fast-xml-parser';

type Node = Record<string, unknown>;

const parser = new XMLParser({ignoreAttributes: false, attributeNamePrefix: '@_', preserveOrder: true, parseAttributeValue: false, parseTagValue: false, trimValues: false});
const builder = new XMLBuilder({ignoreAttributes: false, attributeNamePrefix: '@_', preserveOrder: true, suppressEmptyNode: true});

function tagOf(n: Node): string | undefined {
  return Object.keys(n).find((k) => k !== ':@' && k !== '#text');
}
function kids(n: Node): Node[] {
  const t = tagOf(n);
  return t ? (n[t] as Node[]) : [];
}
function attrs(n: Node): Record<string, string> {
  return ((n[':@'] as Record<string, string> | undefined) ??= {} as Record<string, string>) as Record<string, string>;
}
function find(list: Node[], tag: string): Node | undefined {
  return list.find((n) => tagOf(n) === tag);
}

export interface RestoredDisk {
  path: string;
  format: string;
  /**
   * The image's backing is an NBD export on a unix socket (instant recovery), given to libvirt
   * in the XML: libvirt would otherwise read it from the image, where the socket is a URI that
   * libvirt does not unescape (a path with a space would not work).
   */
  nbdBacking?: {exportName: string; socket: string};
}

/** A random locally administered MAC in the QEMU/KVM range (52:54:00). */
export function randomMac(random: () => number = Math.random): string {
  const b = () => Math.floor(random() * 256).toString(16).padStart(2, '0');
  return `52:54:00:${b()}:${b()}:${b()}`;
}

export function rewriteDomainForRestore(
  xml: string,
  opts: {
    name: string;
    disks: Map<string, RestoredDisk>;
    keepUuid?: boolean;
    /** The new VM's UUID (otherwise libvirt chooses one); not with keepUuid. */
    uuid?: string;
    mac?: () => string;
    /**
     * The restored UEFI variable store's path; undefined when it is not restored: then the
     * `<nvram>` keeps only its template, and libvirt makes a fresh varstore for the VM (it must
     * never point at the original VM's file).
     */
    nvramPath?: string;
    /** Leave out every network interface (an isolated VM: instant recovery without network, verification). */
    removeInterfaces?: boolean;
    /** Add a VGA adapter when the VM has no video device (a screen to take a screenshot of; no display port is opened). */
    ensureVideo?: boolean;
  },
): string {
  const doc = parser.parse(xml) as Node[];
  const domain = find(doc, 'domain');
  if (!domain) throw new Error('not a domain XML');
  const top = kids(domain);
  const mac = opts.mac ?? (() => randomMac());

  const nameNode = find(top, 'name');
  if (nameNode) nameNode['name'] = [{'#text': opts.name}];
  if (!opts.keepUuid) {
    const i = top.findIndex((n) => tagOf(n) === 'uuid');
    if (i >= 0) top.splice(i, 1);
    // A new UUID chosen by the caller (recorded before the VM exists), after the name.
    if (opts.uuid) top.splice(nameNode ? top.indexOf(nameNode) + 1 : 0, 0, {uuid: [{'#text': opts.uuid}]});
  }

  const os = find(top, 'os');
  const osKids = os ? kids(os) : [];
  const nvramAt = osKids.findIndex((n) => tagOf(n) === 'nvram');
  if (os && nvramAt >= 0) {
    const nvram = osKids[nvramAt]!;
    const a = attrs(nvram);
    if (opts.nvramPath !== undefined) {
      // A plain file varstore: <nvram template='...'>/path</nvram> (a <source> form becomes this one).
      delete a['@_type'];
      nvram['nvram'] = [{'#text': opts.nvramPath}];
    } else if (a['@_template'] !== undefined) {
      delete a['@_type'];
      nvram['nvram'] = [];
    } else {
      osKids.splice(nvramAt, 1);
    }
  }

  const devices = find(top, 'devices');
  if (devices) {
    const list = kids(devices);
    for (let i = list.length - 1; i >= 0; i--) {
      const n = list[i]!;
      const tag = tagOf(n);
      if (tag === 'disk' && (attrs(n)['@_device'] ?? 'disk') === 'disk') {
        const dev = attrs(find(kids(n), 'target') ?? {})['@_dev'];
        const restored = dev ? opts.disks.get(dev) : undefined;
        if (!restored) {
          list.splice(i, 1);
          continue;
        }
        attrs(n)['@_type'] = 'file';
        const children = kids(n).filter((c) => !['source', 'backingStore'].includes(tagOf(c) ?? ''));
        const driver = find(children, 'driver');
        if (driver) attrs(driver)['@_type'] = restored.format;
        const src: Node = {source: [], ':@': {'@_file': restored.path}};
        const driverAt = driver ? children.indexOf(driver) + 1 : 0;
        children.splice(driverAt, 0, src);
        if (restored.nbdBacking) {
          const backing: Node = {
            backingStore: [
              {format: [], ':@': {'@_type': 'raw'}},
              {source: [{host: [], ':@': {'@_transport': 'unix', '@_socket': restored.nbdBacking.socket}}], ':@': {'@_protocol': 'nbd', '@_name': restored.nbdBacking.exportName}},
              {backingStore: []},
            ],
            ':@': {'@_type': 'network'},
          };
          children.splice(driverAt + 1, 0, backing);
        }
        n['disk'] = children;
      } else if (tag === 'interface' && opts.removeInterfaces) {
        list.splice(i, 1);
      } else if (tag === 'interface') {
        const m = find(kids(n), 'mac');
        if (m) attrs(m)['@_address'] = mac();
      }
    }
    if (opts.ensureVideo && !find(list, 'video')) list.push({video: [{model: [], ':@': {'@_type': 'vga'}}]});
  }
  return builder.build(doc) as string;
}
