#!/bin/sh
# @NAME@ package: after unpacking. The config stays readable by the service
# only; systemd learns the unit. A first install @FIRST@; an upgrade
# restarts a running @NAME@.
# deb: $1 = configure, $2 = the version upgraded from (empty on a first
# install); rpm: $1 = 1 on a first install, 2 on an upgrade.
set -e
root="${DPKG_ROOT:-}"
case "$1" in
configure) [ -n "${2:-}" ] && upgrade=1 || upgrade= ;;
1) upgrade= ;;
[0-9]*) upgrade=1 ;;
*) exit 0 ;;
esac
# The group by number from the root's own /etc/group (DPKG_ROOT).
gid=$(awk -F: '$1 == "@NAME@" { print $3 }' "$root/etc/group")
chown "0:$gid" "$root/etc/@NAME@/@NAME@.yaml"
chmod 0640 "$root/etc/@NAME@/@NAME@.yaml"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if [ -n "$upgrade" ]; then
		systemctl try-restart @NAME@.service || true
	else
		@START@
	fi
fi
exit 0
