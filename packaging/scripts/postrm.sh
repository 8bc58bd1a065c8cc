#!/bin/sh
# @NAME@ package: after removal systemd forgets the unit; a purge also
# deletes /var/lib/@NAME@ (@DATA@). The user @NAME@ stays, so a file
# it still owns never passes to a new user with its id.
set -e
root="${DPKG_ROOT:-}"
if [ "$1" = purge ]; then
	rm -rf "$root/var/lib/@NAME@"
fi
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
