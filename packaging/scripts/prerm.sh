#!/bin/sh
# @NAME@ package: before removal (not before an upgrade) stop and disable
# the service. deb: $1 = remove | upgrade | ...; rpm: $1 = 0 on removal.
set -e
case "$1" in
remove|0) ;;
*) exit 0 ;;
esac
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl disable --now @NAME@.service || true
fi
exit 0
