// React's act() needs this flag, or it warns and key presses race (docs/reference/ecosystem.md P2).
(globalThis as {IS_REACT_ACT_ENVIRONMENT?: boolean}).IS_REACT_ACT_ENVIRONMENT = true;
process.env.FORCE_COLOR = '0';

// libguestfs's kernel on a machine without one in /boot (test/setup.d/40-guestfs.sh).
{
  const {existsSync, readdirSync} = await import('node:fs');
  const dir = '/var/lib/vmbackup-test/guestfs-kernel';
  const boot = existsSync('/boot') ? readdirSync('/boot').some((f) => f.startsWith('vmlinuz-')) : false;
  const k = !boot && existsSync(`${dir}/boot`) ? readdirSync(`${dir}/boot`).find((f) => f.startsWith('vmlinuz-')) : undefined;
  if (k) {
    const version = k.slice('vmlinuz-'.length);
    process.env.SUPERMIN_KERNEL ??= `${dir}/boot/${k}`;
    process.env.SUPERMIN_KERNEL_VERSION ??= version;
    process.env.SUPERMIN_MODULES ??= `${dir}/lib/modules/${version}`;
  }
}
