/**
 * The appliance's version, reported by the daemon and the CLI: package.json's (a test keeps the
 * two equal). appliance/build-deb.sh writes the Debian package's version into the built copy of
 * this file, so an installed appliance reports exactly the package it came from.
 */
export const VERSION = '0.2.0';
