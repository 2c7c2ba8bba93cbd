# shellcheck shell=bash
# Helpers shared by scripts/conformance.sh and bench/run.sh. Source it; it
# defines functions only. Everything here talks to loopback addresses only.

# free_port prints a TCP port on 127.0.0.1 that nothing listens on right now.
# A race with another process remains possible; callers retry the start.
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	echo "free_port: no free port found" >&2
	return 1
}

# wait_http URL PID [SECONDS]: waits until URL answers with any HTTP status
# below 500 (or exactly 200 when WAIT_HTTP_STATUS=200), while PID is alive.
wait_http() {
	local url=$1 pid=$2 secs=${3:-30} want=${WAIT_HTTP_STATUS:-200} code i
	for i in $(seq 1 $((secs * 10))); do
		if ! kill -0 "$pid" 2>/dev/null; then
			return 2
		fi
		code=$(curl -s ${CURL_EXTRA:-} -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
		if [ "$want" = any ]; then
			case $code in 2??|3??|4??) return 0 ;; esac
		elif [ "$code" = "$want" ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL. Only for processes
# the calling script started itself.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# start_berth BIN DATADIR LOGFILE: starts `BIN serve` on a free loopback
# port, retrying on a port race, and waits for /healthz to answer 200. Sets
# BERTH_PID and BERTH_PORT. Extra serve flags come from BERTH_SERVE_ARGS.
start_berth() {
	local bin=$1 data=$2 log=$3 try rc
	for try in 1 2 3 4 5; do
		BERTH_PORT=$(free_port)
		# shellcheck disable=SC2086
		"$bin" serve --addr "127.0.0.1:$BERTH_PORT" --data "$data" ${BERTH_SERVE_ARGS:-} >>"$log" 2>&1 &
		BERTH_PID=$!
		rc=0
		WAIT_HTTP_STATUS=200 wait_http "http://127.0.0.1:$BERTH_PORT/healthz" "$BERTH_PID" "${BERTH_START_TIMEOUT:-60}" || rc=$?
		if [ "$rc" = 0 ]; then
			return 0
		fi
		stop_pid "$BERTH_PID"
		BERTH_PID=
		if [ "$rc" = 1 ]; then
			echo "start_berth: /healthz never answered 200; log $log:" >&2
			tail -n 30 "$log" >&2
			return 1
		fi
		echo "start_berth: server exited at start (try $try); retrying on another port" >&2
	done
	echo "start_berth: server would not start; log $log:" >&2
	tail -n 30 "$log" >&2
	return 1
}

# start_distribution DATADIR LOGFILE: starts Debian's docker-registry
# (CNCF Distribution 2.8) with filesystem storage under DATADIR on a free
# loopback port. Sets DIST_PID and DIST_PORT.
start_distribution() {
	local dir=$1 log=$2 try rc
	mkdir -p "$dir/storage"
	for try in 1 2 3 4 5; do
		DIST_PORT=$(free_port)
		cat >"$dir/config.yml" <<CONF
version: 0.1
log:
  level: ${DIST_LOG_LEVEL:-error}
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$DIST_PORT
CONF
		/usr/bin/docker-registry serve "$dir/config.yml" >>"$log" 2>&1 &
		DIST_PID=$!
		rc=0
		WAIT_HTTP_STATUS=200 wait_http "http://127.0.0.1:$DIST_PORT/v2/" "$DIST_PID" 30 || rc=$?
		[ "$rc" = 0 ] && return 0
		stop_pid "$DIST_PID"
		DIST_PID=
		[ "$rc" = 1 ] && break
	done
	echo "start_distribution: registry would not start; log $log:" >&2
	tail -n 30 "$log" >&2
	return 1
}

# tools_dir prints where .ci/run installs pinned tools.
tools_dir() {
	echo "${BERTH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-tools}"
}
