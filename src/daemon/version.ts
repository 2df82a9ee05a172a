/** The appliance's version (package.json's), reported by the daemon and the CLI. */
export const VERSION = '0.1.0';
