#!/bin/sh
# @NAME@ package: before unpacking, the system user and group @NAME@ that
# the service runs as (the config file is root:@NAME@ 0640). DPKG_ROOT is
# set when dpkg installs into another root (--root with
# --force-script-chrootless); every path below honours it.
set -e
root="${DPKG_ROOT:-}"
if ! grep -q '^@NAME@:' "$root/etc/group" 2>/dev/null; then
	groupadd --system ${root:+--prefix "$root"} @NAME@
fi
if ! grep -q '^@NAME@:' "$root/etc/passwd" 2>/dev/null; then
	useradd --system ${root:+--prefix "$root"} --gid @NAME@ --home-dir /var/lib/@NAME@ \
		--no-create-home --shell /usr/sbin/nologin --comment "@NAME@ service" @NAME@
fi
exit 0
