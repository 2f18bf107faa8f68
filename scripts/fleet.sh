#!/bin/sh
# fleet.sh starts a split Ambrosia on this machine, on loopback, for
# measurements with `ambrosia bench --gateways` (docs/fleet.md): one
# PostgreSQL server, GATEWAYS gateways, SMS session manager instances
# linked to every gateway, and USERS load accounts.
#
#   scripts/fleet.sh start     start everything, print the bench flags
#   scripts/fleet.sh env       print GATEWAYS_ADDRS, SERVER_PIDS, SM_PIDS again
#   scripts/fleet.sh measure N run the four measurements with N sessions:
#                              idle, logins, messages, failover (it kills sm-0
#                              last); reports and JSON in FLEET_DIR/results
#   scripts/fleet.sh revive    start again the sm instances that are not running
#   scripts/fleet.sh stop      stop everything (the directory stays)
#   scripts/fleet.sh clean     stop and remove the directory
#
# Settings (environment):
#   FLEET_DIR   working directory             (default /tmp/ambrosia-fleet)
#   GATEWAYS    gateway processes              (default 14: a gateway takes
#               at most ~16,000 clients under a file limit of 20,000)
#   SMS         session manager instances     (default 2)
#   USERS       load accounts load0…           (default 200000)
#   BASE_PORT   first client port (direct TLS) (default 15300); service
#               listeners at BASE_PORT+100…, PostgreSQL at BASE_PORT+99,
#               profilers (debug_addr, loopback) of the gateways at
#               BASE_PORT+200…, of the instances at BASE_PORT+250…
#   NICE        niceness of every process      (default 10)
#   AMBROSIA    the binary (default: built from this checkout into FLEET_DIR)
#   RATE        messages/s of the messages measurement (default 1000)
set -eu

FLEET_DIR=${FLEET_DIR:-/tmp/ambrosia-fleet}
GATEWAYS=${GATEWAYS:-14}
SMS=${SMS:-2}
USERS=${USERS:-200000}
BASE_PORT=${BASE_PORT:-15300}
NICE=${NICE:-10}
PG_PORT=$((BASE_PORT + 99))
SECRET=fleet-service-secret
DSN="postgres://ambrosia@127.0.0.1:$PG_PORT/ambrosia?sslmode=disable"
here=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "fleet.sh: $*" >&2; exit 1; }

pgbin() {
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
		[ -x "$d/postgres" ] && { echo "$d"; return; }
	done
	command -v postgres >/dev/null && { dirname "$(command -v postgres)"; return; }
	die "PostgreSQL not found: install the postgresql package"
}

# as_pg runs a command as the postgres user when we are root (PostgreSQL
# refuses to run as root).
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
	else
		"$@"
	fi
}

gw_addrs() {
	i=0; out=""
	while [ $i -lt "$GATEWAYS" ]; do
		out="$out${out:+,}127.0.0.1:$((BASE_PORT + i))"; i=$((i + 1))
	done
	echo "$out"
}

svc_addrs() {
	i=0; out=""
	while [ $i -lt "$GATEWAYS" ]; do
		out="$out${out:+,}127.0.0.1:$((BASE_PORT + 100 + i))"; i=$((i + 1))
	done
	echo "$out"
}

pids_of() { cat "$FLEET_DIR"/$1*.pid 2>/dev/null | tr '\n' ',' | sed 's/,$//'; }

print_env() {
	echo "GATEWAYS_ADDRS=$(gw_addrs)"
	echo "SERVER_PIDS=$(head -1 "$FLEET_DIR/pg/data/postmaster.pid"),$(pids_of gw),$(pids_of sm)"
	echo "SM_PIDS=$(pids_of sm)"
	echo "DSN=$DSN"
	echo "AMBROSIA=$AMBROSIA"
}

# wait_log FILE TEXT COUNT waits until FILE has COUNT lines with TEXT.
wait_log() {
	n=0
	while :; do
		c=$(grep -c "$2" "$1" 2>/dev/null) || c=${c:-0}
		[ "$c" -ge "$3" ] && break
		n=$((n + 1)); [ $n -gt 600 ] && die "no $3 × $2 in $1 after 60 s"
		sleep 0.1
	done
}

# start_sm J starts session manager instance sm-J, linked to every gateway.
start_sm() {
	AMBROSIA_SERVICE_SECRET=$SECRET nice -n "$NICE" "$AMBROSIA" service sm --config "$FLEET_DIR/ambrosia.toml" \
		--instance "sm-$1" --gateway "$(svc_addrs)" --debug-addr "127.0.0.1:$((BASE_PORT + 250 + $1))" \
		--log-format json --log-level info >>"$FLEET_DIR/sm$1.log" 2>&1 &
	echo $! >"$FLEET_DIR/sm$1.pid"
}

# revive starts again the instances that are not running (after a
# failover measurement killed one).
revive() {
	AMBROSIA=${AMBROSIA:-$FLEET_DIR/ambrosia}
	j=0
	while [ $j -lt "$SMS" ]; do
		if ! kill -0 "$(cat "$FLEET_DIR/sm$j.pid" 2>/dev/null || echo 0)" 2>/dev/null; then
			start_sm $j
			echo "started sm-$j again"
		fi
		j=$((j + 1))
	done
	sleep 2
	print_env >"$FLEET_DIR/env"
	cat "$FLEET_DIR/env"
}

start() {
	mkdir -p "$FLEET_DIR"
	if [ -z "${AMBROSIA:-}" ]; then
		AMBROSIA=$FLEET_DIR/ambrosia
		(cd "$here" && go build -o "$AMBROSIA" ./cmd/ambrosia)
	fi
	bin=$(pgbin)
	# PostgreSQL: durability off (a throwaway cluster), enough connections
	# for the instances' pools.
	if [ ! -d "$FLEET_DIR/pg/data" ]; then
		mkdir -p "$FLEET_DIR/pg"
		[ "$(id -u)" = 0 ] && chown postgres: "$FLEET_DIR/pg"
		as_pg "$bin/initdb" --pgdata "$FLEET_DIR/pg/data" --username ambrosia --auth trust --encoding UTF8 --locale C --no-sync >"$FLEET_DIR/initdb.log"
	fi
	as_pg nice -n "$NICE" "$bin/pg_ctl" -D "$FLEET_DIR/pg/data" -l "$FLEET_DIR/pg/server.log" -w start -o \
		"-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$FLEET_DIR/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB" >/dev/null
	as_pg "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U ambrosia -d postgres -qtAc "SELECT 1 FROM pg_database WHERE datname='ambrosia'" | grep -q 1 ||
		as_pg "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U ambrosia ambrosia
	cat >"$FLEET_DIR/ambrosia.toml" <<EOF
domains = ["localhost"]
data_dir = "$FLEET_DIR/data"
[storage]
backend = "postgres"
postgres_dsn = "$DSN"
EOF
	# The accounts: one derivation of the password, shared by all.
	have=$(as_pg "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U ambrosia -d ambrosia -qtAc "SELECT count(*) FROM accounts" 2>/dev/null || echo 0)
	if [ "${have:-0}" -lt "$USERS" ]; then
		echo "creating $USERS accounts…"
		"$AMBROSIA" bench users --postgres-dsn "$DSN" --count "$USERS"
	fi

	i=0
	while [ $i -lt "$GATEWAYS" ]; do
		AMBROSIA_SERVICE_SECRET=$SECRET nice -n "$NICE" "$AMBROSIA" gateway \
			--c2s-addr '' --c2s-tls-addr "127.0.0.1:$((BASE_PORT + i))" \
			--service-addr "127.0.0.1:$((BASE_PORT + 100 + i))" --debug-addr "127.0.0.1:$((BASE_PORT + 200 + i))" \
			--log-format json --log-level info >"$FLEET_DIR/gw$i.log" 2>&1 &
		echo $! >"$FLEET_DIR/gw$i.pid"
		i=$((i + 1))
	done
	i=0
	while [ $i -lt "$GATEWAYS" ]; do
		wait_log "$FLEET_DIR/gw$i.log" '"gateway starting"' 1
		i=$((i + 1))
	done
	j=0
	while [ $j -lt "$SMS" ]; do
		start_sm $j
		# The first instance writes the domain's certificate the others read.
		[ $j = 0 ] && wait_log "$FLEET_DIR/sm0.log" '"msg":"bound"' "$GATEWAYS"
		j=$((j + 1))
	done
	i=0
	while [ $i -lt "$GATEWAYS" ]; do
		wait_log "$FLEET_DIR/gw$i.log" '"msg":"bound"' "$SMS"
		i=$((i + 1))
	done
	echo "fleet up: $GATEWAYS gateways, $SMS session manager instances, PostgreSQL on $PG_PORT, in $FLEET_DIR"
	print_env | tee "$FLEET_DIR/env"
}

measure() {
	n=$1
	AMBROSIA=${AMBROSIA:-$FLEET_DIR/ambrosia}
	eval "$(print_env)"
	out=$FLEET_DIR/results
	mkdir -p "$out"
	b="nice -n $NICE $AMBROSIA bench"
	common="--gateways $GATEWAYS_ADDRS --direct-tls"
	# Every figure goes through the same binary and flags; the servers'
	# memory and CPU are summed over their processes and children.
	$b idle $common --count "$n" --server-pids "$SERVER_PIDS" --settle 10s --json "$out/idle-$n.json" 2>"$out/idle-$n.progress" | tee "$out/idle-$n.txt"
	$b logins $common --count "$n" --users "$n" --server-pids "$SERVER_PIDS" --json "$out/logins-$n.json" 2>"$out/logins-$n.progress" | tee "$out/logins-$n.txt"
	$b messages $common --sessions "$n" --rate "${RATE:-1000}" --duration 20s --max-p99 1s --server-pids "$SERVER_PIDS" --json "$out/messages-$n.json" 2>"$out/messages-$n.progress" | tee "$out/messages-$n.txt"
	$b failover $common --sessions "$n" --rate 200 --duration 10s --kill-after 3s --kill-pid "${SM_PIDS%%,*}" --json "$out/failover-$n.json" 2>"$out/failover-$n.progress" | tee "$out/failover-$n.txt"
}

stop() {
	for f in "$FLEET_DIR"/sm*.pid "$FLEET_DIR"/gw*.pid; do
		[ -f "$f" ] || continue
		kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
	sleep 1
	if [ -f "$FLEET_DIR/pg/data/postmaster.pid" ]; then
		as_pg "$(pgbin)/pg_ctl" -D "$FLEET_DIR/pg/data" -m fast -w stop >/dev/null || true
	fi
}

case "${1:-}" in
start) start ;;
env)
	AMBROSIA=${AMBROSIA:-$FLEET_DIR/ambrosia}
	print_env
	;;
measure) measure "${2:?sessions}" ;;
revive) revive ;;
stop) stop ;;
clean)
	stop
	rm -rf "$FLEET_DIR"
	;;
*) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
