#!/bin/sh
# conf/spawn-fcgi.sh: start (or stop) pmb.fcgi as N FastCGI processes on a
# Unix socket with spawn-fcgi, for a web server that passes requests to a
# socket (conf/nginx-site-https.conf, conf/lighttpd.conf, conf/apache.conf).
#
# Usage (as root, so that it can drop to the pmb user):
#     sh conf/spawn-fcgi.sh          start N processes, then return
#     sh conf/spawn-fcgi.sh stop     stop them (SIGTERM: requests in flight
#                                    finish first)
# Settings come from the environment; the defaults suit "make install":
#     PMB_FCGI      /usr/local/bin/pmb.fcgi
#     PMB_CONFIG    /etc/pmb/pmb.conf      (conf/pmb.conf documents it)
#     PMB_SOCKET    /run/pmb/pmb.sock
#     PMB_WORKERS   4                      processes (-F)
#     PMB_USER      pmb                    user the processes run as; empty:
#                                          stay the user who runs this script
#     PMB_GROUP     pmb
#     PMB_SOCKET_GROUP www-data            group of the socket (the web
#                                          server's group); empty: PMB_GROUP
#     PMB_PIDFILE   /run/pmb/spawn-fcgi.pid  one pid per line
#     PMB_LOG       /var/log/pmb/pmb.log   pmb.fcgi's log (its standard
#                                          error), appended to; the folder
#                                          is made (PMB_USER's, 0750) when
#                                          missing. conf/logrotate.d/pmb
#                                          rotates it (copytruncate)
#
# The socket is made mode 0660, owned by PMB_USER and PMB_SOCKET_GROUP
# (pmb:www-data): only the web server may talk to it (anyone who can write
# to a libfcgi socket can crash a worker), and the web server's user is in
# no group that can read /etc/pmb/pmb.conf (root:pmb 0640). spawn-fcgi
# starts the processes and exits; nothing replaces one that dies. For a
# supervised service prefer conf/systemd/pmb.socket + pmb.service, or
# conf/systemd/pmb-listen.service (pmb.fcgi --listen), which restart
# workers. spawn-fcgi sends a process's standard error to /dev/null, so
# each process is started through "sh -c 'exec pmb.fcgi ... 2>>LOG'".
#
# Before the first start: the user pmb, /etc/pmb/pmb.conf (root:pmb
# 0640), /var/lib/pmb (pmb:pmb 0750) and pmbctl init, exactly as README
# "Install on a server" ("From source") gives them. At boot, run this
# script as root (e.g. from /etc/rc.local); conf/cron.d/pmb keeps the
# mail daemon, backups and the search index going without systemd.
set -eu

fcgi=${PMB_FCGI:-/usr/local/bin/pmb.fcgi}
config=${PMB_CONFIG:-/etc/pmb/pmb.conf}
sock=${PMB_SOCKET:-/run/pmb/pmb.sock}
workers=${PMB_WORKERS:-4}
user=${PMB_USER-pmb}
group=${PMB_GROUP-pmb}
sockgroup=${PMB_SOCKET_GROUP-www-data}
pidfile=${PMB_PIDFILE:-/run/pmb/spawn-fcgi.pid}
log=${PMB_LOG:-/var/log/pmb/pmb.log}

# Is process $1 running (not gone, nor a zombie waiting for init)?
running() {
	kill -0 "$1" 2>/dev/null &&
	    ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"
}

if [ "${1:-start}" = stop ]; then
	[ -f "$pidfile" ] || { echo "spawn-fcgi.sh: no $pidfile" >&2; exit 1; }
	# Ask every process to stop, then wait up to 30 s for them to go.
	pids=$(cat "$pidfile")
	kill $pids 2>/dev/null || true
	for _ in $(seq 300); do
		alive=""
		for p in $pids; do
			running "$p" && alive="$alive $p"
		done
		[ -z "$alive" ] && break
		sleep 0.1
	done
	[ -n "$alive" ] && kill -KILL $alive 2>/dev/null
	rm -f "$pidfile" "$sock"
	exit 0
fi

mkdir -p "$(dirname "$sock")" "$(dirname "$pidfile")"
umask 027	# the log: 0640
set -- -s "$sock" -M 0660 -F "$workers" -P "$pidfile"
if [ -n "$user" ] && [ "$(id -u)" -eq 0 ]; then
	set -- "$@" -u "$user" -g "${group:-$user}"
	[ -n "$sockgroup" ] && set -- "$@" -U "$user" -G "$sockgroup"
	[ -d "$(dirname "$log")" ] || install -d -o "$user" \
	    -g "${group:-$user}" -m 0750 "$(dirname "$log")"
else
	mkdir -p "$(dirname "$log")"
fi
# The environment is emptied so that pmb.fcgi sees only what it needs.
exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    spawn-fcgi "$@" -- /bin/sh -c 'exec "$0" --config "$1" 2>>"$2"' \
    "$fcgi" "$config" "$log"
