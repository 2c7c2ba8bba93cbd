#!/usr/bin/env bash
# Benchmarks berth against CNCF Distribution 2.8 (Debian's docker-registry) in
# one run, with the same clients, and writes docs/benchmarks.md.
#
#   bench/run.sh
#
# For each server in turn (never both at once: the machine has 2 cores), on a
# fresh data dir and a free 127.0.0.1 port:
#   (a) crane push / pull of an image with one 256 MiB random layer, plus a raw
#       GET of that blob with curl, compared with a plain file server (loopback);
#   (b) crane push / pull of an image with 50 random 1 MiB layers;
#   (c) 200 tiny images (one 1 KiB layer each) pushed 8 at a time, from one
#       client process (bench/tinypush) and with a crane process per image;
#   (d) manifest GETs/s and 4 KiB blob GETs/s with wrk (-t2 -c16, 10 s);
#   (e) peak RSS (VmHWM): after the (a) pushes, during the GETs of (d) (the
#       peak reset before them), and at the end of the run.
# Beside each throughput, the server's CPU seconds per unit of work (utime +
# stime of its process from /proc/PID/stat, before and after each measured
# phase): per GiB pushed in (a), per tiny image in (c), per 1,000 requests in (d).
# (a) to (c) run BENCH_REPS times (default 3) on new random content each time;
# the median is reported. Scale-out: berth on PostgreSQL (127.0.0.1:5432, a
# schema of its own) and S3 (versitygw on loopback over a local folder) runs
# the same (a) to (d) after the embedded berth, and the report gives its
# figures as ratios against embedded berth's of the same run; on by default
# when psql reaches PostgreSQL and versitygw is installed (.ci/run does),
# BENCH_SCALEOUT=0 skips it, BENCH_SCALEOUT=1 fails without them. If perf is installed, CPU profiles (perf record -e
# cpu-clock) of extra, unmeasured runs go into the report.
#
# Needs: go, crane (pinned; .ci/run installs it into ~/.cache/berth-tools/bin),
# wrk, docker-registry, curl, jq (Debian). Optional: perf (Debian linux-perf).
# Environment: BERTH_BIN (use this binary instead of building ./cmd/berth;
# BERTH_REV names the commit it was built from, for the report),
# BENCH_REPS, BENCH_WRK_SECONDS (10), BENCH_TINY (200), BENCH_OUT (where the
# report goes, default docs/benchmarks.md), BENCH_PERF=0 (no profile),
# BENCH_WAIT_IDLE=1 (first wait, at most 10 min, for a 1-minute load below 1),
# BENCH_SCALEOUT (see above), BENCH_S3_TLS=1 (versitygw over https), BENCH_POSTGRES (default
# postgres://postgres@127.0.0.1:5432/test?sslmode=disable), BERTH_VERSITYGW.
# Everything stays on loopback; every loop is bounded.
set -euo pipefail
# Decimal points, not commas, in what bash's times and awk print and read.
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

REPS=${BENCH_REPS:-3}
WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
TINY=${BENCH_TINY:-200}
OUT=${BENCH_OUT:-$root/docs/benchmarks.md}
export PATH="$(tools_dir)/bin:$PATH"

for t in go crane wrk curl jq /usr/bin/docker-registry; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing; run .ci/run once (it installs the pinned tools)" >&2; exit 2; }
done
perf_ok=0
if [ "${BENCH_PERF:-1}" != 0 ] && command -v perf >/dev/null; then perf_ok=1; fi
PG_BASE=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
VERSITYGW=${BERTH_VERSITYGW:-$(command -v versitygw || echo "$(tools_dir)/bin/versitygw")}
scaleout=${BENCH_SCALEOUT:-auto}
if [ "$scaleout" != 0 ]; then
	why=
	command -v psql >/dev/null || why="psql is missing"
	[ -n "$why" ] || psql -qtA "$PG_BASE" -c 'SELECT 1' >/dev/null 2>&1 || why="PostgreSQL at ${PG_BASE%%\?*} does not answer"
	[ -n "$why" ] || [ -x "$VERSITYGW" ] || why="versitygw is not at $VERSITYGW (run .ci/run once)"
	if [ -n "$why" ]; then
		[ "$scaleout" = 1 ] && { echo "bench: BENCH_SCALEOUT=1 but $why" >&2; exit 2; }
		echo "bench: skipping the PostgreSQL + S3 run: $why" >&2
		scaleout=0
	else
		scaleout=1
	fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
SERVER_PID=
FS_PID=
PERF_PID=
S3_PID=
PG_SCHEMA=
PG_POSTMASTER=
cleanup() {
	[ -z "$PERF_PID" ] || { kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; }
	stop_pid "$FS_PID"
	stop_pid "$SERVER_PID"
	stop_pid "$S3_PID"
	[ -z "$PG_SCHEMA" ] || psql -qtA "$PG_BASE" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
best() { sort -g | tail -n 1; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.3f", a / b }'; }
# divp A B: A / B with six decimals, for the CPU seconds per image.
divp() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.6f", a / b }'; }
vmhwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
CLK_TCK=$(getconf CLK_TCK)
# cpu_s PID: the CPU seconds (user + system, all threads) PID has used so far.
# The fields are counted after the command name's closing parenthesis, which
# may hold spaces.
cpu_s() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$CLK_TCK" '{ printf "%.2f", ($12 + $13) / hz }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# stores_cpu_s: for the scale-out run, the CPU seconds so far of the stores
# berth shares the machine with, as "VERSITYGW POSTGRESQL" (PostgreSQL: the
# postmaster serving BENCH_POSTGRES and its children; berth's pool keeps its
# backends for the run); "0 0" otherwise.
stores_cpu_s() {
	if [ -z "$S3_PID" ]; then echo "0 0"; return; fi
	local p c pg=0
	local procs
	if [ -n "$PG_POSTMASTER" ]; then
		procs="$PG_POSTMASTER $(pgrep -P "$PG_POSTMASTER" || true)"
	else
		procs=$(pgrep -x postgres || true) # every cluster's, when its folder cannot be read
	fi
	for p in $procs; do
		c=$(cpu_s "$p" 2>/dev/null || true)
		pg=$(add "$pg" "${c:-0}")
	done
	echo "$(cpu_s "$S3_PID") $pg"
}
# children_cpu sets CHILD_CPU to the CPU seconds (user + system) of the clients
# this shell has run and waited for so far, grandchildren included. It must not
# run in a subshell ($(...)): bash's times builtin reports the calling shell's
# children.
children_cpu() {
	times >"$work/times"
	CHILD_CPU=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/times")
}

log "building berth, mkimage, fileserve and tinypush"
mkdir -p "$work/bin"
if [ -n "${BERTH_BIN:-}" ]; then
	cp "$BERTH_BIN" "$work/bin/berth"
else
	(cd "$root" && go build -o "$work/bin/berth" ./cmd/berth)
fi
(cd "$root" && go build -o "$work/bin/mkimage" ./bench/mkimage && go build -o "$work/bin/fileserve" ./bench/fileserve && go build -o "$work/bin/tinypush" ./bench/tinypush)
MB=1000000

# Credentials: once berth has authentication, its initial admin is used
# (crane through a DOCKER_CONFIG, curl and wrk through a bearer token).
setup_auth() { # setup_auth NAME DATADIR HOSTPORT
	local cfg=$work/$1-docker
	mkdir -p "$cfg"
	AUTH_USER= AUTH_PASS=
	if [ -f "$2/initial-admin.json" ]; then
		AUTH_USER=$(jq -r .client_id "$2/initial-admin.json")
		AUTH_PASS=$(jq -r .client_secret "$2/initial-admin.json")
		jq -n --arg h "$3" --arg a "$(printf '%s:%s' "$AUTH_USER" "$AUTH_PASS" | base64 -w0)" \
			'{auths: {($h): {auth: $a}}}' >"$cfg/config.json"
	else
		echo '{}' >"$cfg/config.json"
	fi
	export DOCKER_CONFIG=$cfg
}

# auth_header HOSTPORT SCOPE: prints an Authorization header line for curl
# and wrk, or nothing when the registry lets anonymous clients in.
auth_header() {
	local host=$1 scope=$2 hdrs realm service token
	hdrs=$(curl -s -D - -o /dev/null "http://$host/v2/")
	if ! grep -qiE '^HTTP/[0-9.]+ 401' <<<"$hdrs"; then return 0; fi
	[ -n "$AUTH_USER" ] || { log "registry wants credentials but none are known"; return 1; }
	if grep -qi '^www-authenticate: *basic' <<<"$hdrs"; then
		echo "Authorization: Basic $(printf '%s:%s' "$AUTH_USER" "$AUTH_PASS" | base64 -w0)"
		return 0
	fi
	realm=$(sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: *Bearer .*realm="\([^"]*\)".*/\1/p' <<<"$hdrs" | tr -d '\r')
	service=$(sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: *Bearer .*service="\([^"]*\)".*/\1/p' <<<"$hdrs" | tr -d '\r')
	token=$(curl -s -u "$AUTH_USER:$AUTH_PASS" -G "$realm" --data-urlencode "service=$service" --data-urlencode "scope=$scope" | jq -r '.token // .access_token // empty')
	[ -n "$token" ] || { log "could not get a token from $realm"; return 1; }
	echo "Authorization: Bearer $token"
}

curl_auth() { # curl_auth HEADER ARGS...: curl with the header when not empty
	local h=$1
	shift
	if [ -n "$h" ]; then curl -H "$h" "$@"; else curl "$@"; fi
}

wrk_rps() { # wrk_rps URL HEADER...: prints requests/s, fails on any error response
	local url=$1 out
	shift
	local args=(-t2 -c16 "-d${WRK_SECONDS}s" --timeout 5s)
	local h
	for h in "$@"; do [ -z "$h" ] || args+=(-H "$h"); done
	out=$(wrk "${args[@]}" "$url")
	echo "$out" >>"$work/wrk.log"
	# How many requests were answered, for the CPU per request (the caller
	# runs this in a subshell, so it cannot set a variable).
	awk '/requests in/ { print $1 }' <<<"$out" >"$work/wrk.requests"
	if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
		log "wrk saw error responses from $url:"
		echo "$out" >&2
		return 1
	fi
	awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}

# perf_top FILE: the 15 hottest symbols of a perf.data file.
perf_top() {
	{ perf report -i "$1" --stdio --no-children --sort dso,symbol 2>&1 || true; } |
		{ grep -E '^ +[0-9.]+%' || echo "(no samples)"; } | sed 's/[[:space:]]*-[[:space:]]*-[[:space:]]*$//' | awk 'NR <= 15'
}

# perf_pkgs FILE: samples summed by Go package (kernel and unsymbolized code
# by object), the 10 largest.
perf_pkgs() {
	{ perf report -i "$1" --stdio --no-children --sort dso,symbol 2>&1 || true; } |
		awk '$1 ~ /^[0-9.]+%$/ {
			pct = $1; sub(/%/, "", pct)
			if ($3 == "[k]") { pkg = "[kernel]" }
			else {
				sym = $4
				if (sym ~ /^0x[0-9a-f]+$/) { pkg = $2 " (no symbols)" }
				else {
					n = split(sym, parts, "/"); last = parts[n]; sub(/\..*/, "", last)
					pkg = (n > 1 ? substr(sym, 1, length(sym) - length(parts[n])) : "") last
				}
			}
			sum[pkg] += pct
		}
		END { for (p in sum) printf "%7.2f%%  %s\n", sum[p], p }' | sort -rn | awk 'NR <= 10'
}

# profile NAME PID TITLE CMD...: runs CMD (an extra, unmeasured run) while
# perf samples PID, and appends the hottest symbols to the report section.
profile() {
	local name=$1 pid=$2 title=$3
	shift 3
	[ "$perf_ok" = 1 ] || return 0
	local data=$work/$name.$RANDOM.perf
	perf record -q -e cpu-clock -F 999 -p "$pid" -o "$data" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 0.3
	local t wall samples cpu0 cpu1
	cpu0=$(head -n 1 /proc/stat)
	t=$(now)
	"$@"
	wall=$(since "$t")
	cpu1=$(head -n 1 /proc/stat)
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=
	samples=$({ perf script -i "$data" -F ip 2>/dev/null || true; } | wc -l)
	{
		echo
		echo "### $name: $title"
		echo
		awk -v s="$samples" -v w="$wall" 'BEGIN { printf "The server used %.2f CPU-seconds in the %.2f s the run took: %.0f%% of one core (the machine has '"$(nproc)"'; below 100%% it waited for the disk or the client).", s / 999, w, s / 999 / w * 100 }'
		# The whole machine's busy share (server, clients and kernel) from /proc/stat.
		awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {
			n = split(a, x, " "); split(b, y, " ")
			for (i = 2; i <= n; i++) { d = y[i] - x[i]; tot += d; if (i != 5 && i != 6) busy += d }
			if (tot > 0) printf " The machine as a whole was busy %.0f%% of the time (all cores, clients included).\n\n", busy / tot * 100
			else printf "\n\n"
		}'
		echo 'By package:'
		echo
		echo '```'
		perf_pkgs "$data"
		echo '```'
		echo
		echo 'Hottest symbols:'
		echo
		echo '```'
		perf_top "$data"
		echo '```'
	} >>"$work/$name.perf.md"
	rm -f "$data"
}

declare -A R

# start_scaleout DIR: a versitygw over DIR/s3 with one bucket, and a fresh
# PostgreSQL schema; sets BERTH_SERVE_ARGS and the environment berth serve
# reads (key encryption key, AWS credentials) for start_berth.
start_scaleout() {
	local dir=$1 port try
	mkdir -p "$dir/s3/bench"
	# Plain http by default: minio-go then signs every 64 KiB chunk of a
	# payload and versitygw checks each signature (two SHA-256 passes over
	# every byte pushed). BENCH_S3_TLS=1 serves https with a self-signed
	# certificate, as S3 is reached in production: payloads go unsigned and
	# TLS protects them. On 2026-12-07 the 256 MiB push measured the same
	# both ways, and GETs over https at a third of http (versitygw's TLS).
	local scheme=http tls_args=() insecure="&insecure=true"
	if [ "${BENCH_S3_TLS:-0}" = 1 ]; then
		scheme=https insecure=
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
			-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
			-keyout "$dir/s3.key" -out "$dir/s3.crt" >/dev/null 2>&1
		tls_args=(--cert "$dir/s3.crt" --key "$dir/s3.key")
		# Go's TLS roots on Linux: berth trusts the bench's certificate.
		export SSL_CERT_FILE=$dir/s3.crt
	fi
	S3_SCHEME=$scheme
	for try in 1 2 3 4 5; do
		port=$(free_port)
		# --keep-alive: versitygw closes every connection after one request
		# unless told otherwise, so berth paid a TCP connect per S3 request
		# (3,300 sockets in TIME_WAIT for 160 tiny images), which S3 and
		# other object stores do not make their clients pay.
		ROOT_ACCESS_KEY=bench-access ROOT_SECRET_KEY=bench-secret-key-0123456789 \
			"$VERSITYGW" --port "127.0.0.1:$port" "${tls_args[@]}" --quiet --keep-alive posix "$dir/s3" >"$dir/s3.log" 2>&1 &
		S3_PID=$!
		WAIT_HTTP_STATUS=any CURL_EXTRA=-k wait_http "$scheme://127.0.0.1:$port/" "$S3_PID" 30 && break
		stop_pid "$S3_PID"
		S3_PID=
	done
	[ -n "$S3_PID" ] || { log "versitygw would not start: $(tail -n 5 "$dir/s3.log")"; return 1; }
	# The postmaster of the cluster berth uses, whose processes stores_cpu_s counts.
	PG_POSTMASTER=$(head -n 1 "$(psql -qtA "$PG_BASE" -c 'SHOW data_directory' 2>/dev/null)/postmaster.pid" 2>/dev/null || true)
	PG_SCHEMA=berth_bench_$$_$RANDOM
	psql -qtA "$PG_BASE" -c "CREATE SCHEMA $PG_SCHEMA" >/dev/null
	local dsn=$PG_BASE
	case $dsn in *\?*) dsn="$dsn&search_path=$PG_SCHEMA" ;; *) dsn="$dsn?search_path=$PG_SCHEMA" ;; esac
	export AWS_ACCESS_KEY_ID=bench-access AWS_SECRET_ACCESS_KEY=bench-secret-key-0123456789
	BERTH_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64 -w0)
	export BERTH_KEY_ENCRYPTION_KEY
	BERTH_SERVE_ARGS="--db $dsn --blobs s3://bench?endpoint=127.0.0.1:$port&region=us-east-1&pointers=true$insecure"
}

stop_scaleout() {
	stop_pid "$S3_PID"
	S3_PID=
	psql -qtA "$PG_BASE" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null
	PG_SCHEMA=
	unset BERTH_SERVE_ARGS AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY BERTH_KEY_ENCRYPTION_KEY SSL_CERT_FILE
}

# per_1000 CPU0 CPU1: CPU seconds per 1,000 requests of the last wrk run.
per_1000() { div "$(awk -v a="$1" -v b="$2" 'BEGIN { print (b - a) * 1000 }')" "$(cat "$work/wrk.requests")"; }

bench_server() { # bench_server NAME (berth|distribution)
	local name=$1 dir=$work/$1 host pid seed rep t dig url hdr i
	mkdir -p "$dir"
	case $name in
	berth)
		start_berth "$work/bin/berth" "$dir/data" "$dir/server.log"
		pid=$BERTH_PID host=127.0.0.1:$BERTH_PORT
		;;
	scaleout)
		start_scaleout "$dir"
		start_berth "$work/bin/berth" "$dir/data" "$dir/server.log"
		pid=$BERTH_PID host=127.0.0.1:$BERTH_PORT
		;;
	distribution)
		start_distribution "$dir/data" "$dir/server.log"
		pid=$DIST_PID host=127.0.0.1:$DIST_PORT
		;;
	esac
	SERVER_PID=$pid
	if [ "$name" = scaleout ]; then
		R[$name.version]=${R[berth.version]}
	elif [ "$name" = berth ]; then
		R[$name.version]=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
		if [ -z "${BERTH_BIN:-}" ] && [ -n "$(cd "$root" && git status --porcelain --untracked-files=no -- . ':!docs/benchmarks.md' 2>/dev/null)" ]; then
			R[$name.version]="${R[$name.version]} (plus uncommitted changes)"
		fi
		[ -z "${BERTH_BIN:-}" ] || R[$name.version]="${BERTH_REV:-${R[$name.version]}} (binary given by BERTH_BIN)"
	else
		R[$name.version]=$(dpkg-query -W -f='${Version}' docker-registry)
	fi
	setup_auth "$name" "$dir/data" "$host"
	R[$name.auth]=$([ -n "$AUTH_USER" ] && echo on || echo off)
	log "$name: pid $pid on $host"
	case $name in berth) seed=1000 ;; distribution) seed=2000 ;; *) seed=3000 ;; esac

	# (a) one 256 MiB layer.
	local pushes=() pulls=() cpu=0 c0 s3cpu=0 pgcpu=0 st0 st1
	for rep in $(seq 1 "$REPS"); do
		"$work/bin/mkimage" -dir "$dir/big-$rep" -layers 1 -size $((256 << 20)) -seed $((seed + rep))
		c0=$(cpu_s "$pid")
		read -r -a st0 <<<"$(stores_cpu_s)"
		t=$(now)
		crane push --insecure "$dir/big-$rep" "$host/bench/big-$rep:latest" 2>>"$dir/crane.log" >/dev/null
		pushes+=("$(since "$t")")
		cpu=$(add "$cpu" "$(awk -v a="$c0" -v b="$(cpu_s "$pid")" 'BEGIN { print b - a }')")
		read -r -a st1 <<<"$(stores_cpu_s)"
		s3cpu=$(add "$s3cpu" "$(minus "${st1[0]}" "${st0[0]}")")
		pgcpu=$(add "$pgcpu" "$(minus "${st1[1]}" "${st0[1]}")")
		[ "$rep" = 1 ] || rm -rf "$dir/big-$rep"
	done
	R[$name.rss_push]=$(vmhwm_mib "$pid")
	if [ "$perf_ok" = 1 ] && [ "$name" != scaleout ]; then
		"$work/bin/mkimage" -dir "$dir/big-prof" -layers 1 -size $((256 << 20)) -seed $((seed + 50))
		profile "$name" "$pid" "crane push of a 256 MiB layer" \
			crane push --insecure "$dir/big-prof" "$host/bench/big-prof:latest" 2>>"$dir/crane.log" >/dev/null
		rm -rf "$dir/big-prof"
	fi
	for rep in $(seq 1 "$REPS"); do
		t=$(now)
		crane pull --insecure --format oci "$host/bench/big-$rep:latest" "$dir/pulled" 2>>"$dir/crane.log"
		pulls+=("$(since "$t")")
		rm -rf "$dir/pulled"
	done
	local big_bytes
	big_bytes=$(jq '.layers[0].size + .config.size' "$dir/big-1/blobs/sha256/$(jq -r '.manifests[0].digest | ltrimstr("sha256:")' "$dir/big-1/index.json")")
	R[$name.a_push_s]=$(printf '%s\n' "${pushes[@]}" | median)
	R[$name.a_pull_s]=$(printf '%s\n' "${pulls[@]}" | median)
	R[$name.a_push]=$(div "$(div "$big_bytes" $MB)" "${R[$name.a_push_s]}")
	R[$name.a_pull]=$(div "$(div "$big_bytes" $MB)" "${R[$name.a_pull_s]}")
	R[$name.a_push_cpu]=$(div "$cpu" "$(awk -v b="$big_bytes" -v n="$REPS" 'BEGIN { print b * n / 1073741824 }')")
	R[$name.a_push_s3cpu]=$(div "$s3cpu" "$(awk -v b="$big_bytes" -v n="$REPS" 'BEGIN { print b * n / 1073741824 }')")
	R[$name.a_push_pgcpu]=$(div "$pgcpu" "$(awk -v b="$big_bytes" -v n="$REPS" 'BEGIN { print b * n / 1073741824 }')")

	# Raw GET of the 256 MiB blob, and the same file from a plain file server.
	dig=$(jq -r '.layers[0].digest' "$dir/big-1/blobs/sha256/$(jq -r '.manifests[0].digest | ltrimstr("sha256:")' "$dir/big-1/index.json")")
	hdr=$(auth_header "$host" "repository:bench/big-1:pull")
	local gets=() code speed
	for rep in 1 2 3 4 5; do
		read -r code speed < <(curl_auth "$hdr" -s -L -o /dev/null -w '%{http_code} %{speed_download}\n' "http://$host/v2/bench/big-1/blobs/$dig")
		[ "$code" = 200 ] || { log "$name: raw blob GET answered $code"; return 1; }
		gets+=("$(div "$speed" $MB)")
	done
	R[$name.a_get]=$(printf '%s\n' "${gets[@]}" | best)
	if [ -z "${R[loopback]:-}" ]; then
		local fsport
		fsport=$(free_port)
		"$work/bin/fileserve" -addr "127.0.0.1:$fsport" -file "$dir/big-1/blobs/sha256/${dig#sha256:}" >/dev/null 2>"$work/fileserve.log" &
		FS_PID=$!
		wait_http "http://127.0.0.1:$fsport/" "$FS_PID" 10
		gets=()
		for rep in 1 2 3 4 5; do
			speed=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$fsport/")
			gets+=("$(div "$speed" $MB)")
		done
		R[loopback]=$(printf '%s\n' "${gets[@]}" | best)
		stop_pid "$FS_PID"
		FS_PID=
	fi
	if [ -z "${R[disk]:-}" ]; then
		# This disk's fsynced write speed, the push's bound: the same layer
		# (in the page cache) copied next to the servers' data and synced,
		# best of 3.
		local src=$dir/big-1/blobs/sha256/${dig#sha256:} t0 t1 writes=()
		for rep in 1 2 3; do
			t0=$(now)
			dd if="$src" of="$dir/disk.tmp" bs=1M conv=fsync status=none
			t1=$(now)
			writes+=("$(div "$(stat -c %s "$src")" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) * 1000000 }')")")
			rm -f "$dir/disk.tmp"
		done
		R[disk]=$(printf '%s\n' "${writes[@]}" | best)
	fi
	rm -rf "$dir/big-1"

	# (b) 50 layers of 1 MiB.
	pushes=() pulls=()
	for rep in $(seq 1 "$REPS"); do
		"$work/bin/mkimage" -dir "$dir/many-$rep" -layers 50 -size $((1 << 20)) -seed $((seed + 100 + rep))
		t=$(now)
		crane push --insecure "$dir/many-$rep" "$host/bench/many-$rep:latest" 2>>"$dir/crane.log" >/dev/null
		pushes+=("$(since "$t")")
		rm -rf "$dir/many-$rep"
	done
	for rep in $(seq 1 "$REPS"); do
		t=$(now)
		crane pull --insecure --format oci "$host/bench/many-$rep:latest" "$dir/pulled" 2>>"$dir/crane.log"
		pulls+=("$(since "$t")")
		rm -rf "$dir/pulled"
	done
	R[$name.b_push_s]=$(printf '%s\n' "${pushes[@]}" | median)
	R[$name.b_pull_s]=$(printf '%s\n' "${pulls[@]}" | median)

	# (c) tiny images, 8 at a time: first from one client process (bench/tinypush,
	# each image an independent client with its own connections and token), the
	# figure the target is for; then with a crane process per image, which on 2
	# cores is bound by crane's own start-up and is reported beside it.
	local tinies=() cranes=() k0
	cpu=0
	local client=0 client_crane=0
	s3cpu=0 pgcpu=0
	for rep in $(seq 1 "$REPS"); do
		"$work/bin/mkimage" -dir "$dir/tiny-$rep" -count "$TINY" -layers 1 -size 1024 -seed $((seed + 200 + rep))
		c0=$(cpu_s "$pid")
		read -r -a st0 <<<"$(stores_cpu_s)"
		children_cpu
		k0=$CHILD_CPU
		t=$(now)
		"$work/bin/tinypush" -dir "$dir/tiny-$rep" -count "$TINY" -parallel 8 -ref "$host/bench/tiny-$rep-%d:latest" >/dev/null
		children_cpu
		client=$(add "$client" "$(minus "$CHILD_CPU" "$k0")")
		tinies+=("$(div "$TINY" "$(since "$t")")")
		cpu=$(add "$cpu" "$(awk -v a="$c0" -v b="$(cpu_s "$pid")" 'BEGIN { print b - a }')")
		read -r -a st1 <<<"$(stores_cpu_s)"
		s3cpu=$(add "$s3cpu" "$(minus "${st1[0]}" "${st0[0]}")")
		pgcpu=$(add "$pgcpu" "$(minus "${st1[1]}" "${st0[1]}")")
		rm -rf "$dir/tiny-$rep"
		"$work/bin/mkimage" -dir "$dir/tinyc-$rep" -count "$TINY" -layers 1 -size 1024 -seed $((seed + 300 + rep))
		children_cpu
		k0=$CHILD_CPU
		t=$(now)
		seq 0 $((TINY - 1)) | xargs -P 8 -I{} crane push --insecure "$dir/tinyc-$rep/{}" "$host/bench/tinyc-$rep-{}:latest" 2>>"$dir/crane.log" >/dev/null
		children_cpu
		client_crane=$(add "$client_crane" "$(minus "$CHILD_CPU" "$k0")")
		cranes+=("$(div "$TINY" "$(since "$t")")")
		rm -rf "$dir/tinyc-$rep"
	done
	R[$name.c_tiny]=$(printf '%s\n' "${tinies[@]}" | median)
	R[$name.c_tiny_cpu]=$(divp "$cpu" $((REPS * TINY)))
	R[$name.c_tiny_s3cpu]=$(divp "$s3cpu" $((REPS * TINY)))
	R[$name.c_tiny_pgcpu]=$(divp "$pgcpu" $((REPS * TINY)))
	R[$name.c_tiny_client_cpu]=$(divp "$client" $((REPS * TINY)))
	R[$name.c_tiny_crane]=$(printf '%s\n' "${cranes[@]}" | median)
	R[$name.c_tiny_crane_cpu]=$(divp "$client_crane" $((REPS * TINY)))
	if [ "$perf_ok" = 1 ] && [ "$name" = berth ]; then
		"$work/bin/mkimage" -dir "$dir/tiny-prof" -count "$TINY" -layers 1 -size 1024 -seed $((seed + 250))
		profile "$name" "$pid" "$TINY tiny images pushed 8 at a time" \
			"$work/bin/tinypush" -dir "$dir/tiny-prof" -count "$TINY" -parallel 8 -ref "$host/bench/tiny-prof-%d:latest" >/dev/null
		rm -rf "$dir/tiny-prof"
	fi

	# (d) wrk: a manifest by tag, and a 4 KiB blob. The peak RSS of the GETs
	# alone: VmHWM is reset first (clear_refs 5), where the kernel allows.
	local hwm_reset=0
	if echo 5 >"/proc/$pid/clear_refs" 2>/dev/null; then hwm_reset=1; fi
	hdr=$(auth_header "$host" "repository:bench/tiny-1-0:pull")
	url="http://$host/v2/bench/tiny-1-0/manifests/latest"
	code=$(curl_auth "$hdr" -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url")
	[ "$code" = 200 ] || { log "$name: manifest GET answered $code"; return 1; }
	c0=$(cpu_s "$pid")
	R[$name.d_manifest]=$(wrk_rps "$url" "Accept: application/vnd.oci.image.manifest.v1+json" "$hdr")
	R[$name.d_manifest_cpu]=$(per_1000 "$c0" "$(cpu_s "$pid")")
	if [ "$name" = berth ]; then
		profile "$name" "$pid" "wrk on a manifest" wrk_rps "$url" "Accept: application/vnd.oci.image.manifest.v1+json" "$hdr" >/dev/null
	fi
	head -c 4096 /dev/urandom >"$dir/blob4k"
	dig=sha256:$(sha256sum "$dir/blob4k" | cut -d' ' -f1)
	hdr=$(auth_header "$host" "repository:bench/small:pull,push")
	local loc
	loc=$(curl_auth "$hdr" -s -D - -o /dev/null -X POST "http://$host/v2/bench/small/blobs/uploads/" | sed -n 's/^[Ll]ocation: *//p' | tr -d '\r')
	case $loc in http*) ;; *) loc="http://$host$loc" ;; esac
	case $loc in *\?*) loc="$loc&digest=$dig" ;; *) loc="$loc?digest=$dig" ;; esac
	code=$(curl_auth "$hdr" -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$dir/blob4k" "$loc")
	[ "$code" = 201 ] || { log "$name: 4 KiB blob upload answered $code"; return 1; }
	url="http://$host/v2/bench/small/blobs/$dig"
	code=$(curl_auth "$hdr" -s -o /dev/null -w '%{http_code}' "$url")
	[ "$code" = 200 ] || { log "$name: 4 KiB blob GET answered $code"; return 1; }
	c0=$(cpu_s "$pid")
	R[$name.d_blob]=$(wrk_rps "$url" "$hdr")
	R[$name.d_blob_cpu]=$(per_1000 "$c0" "$(cpu_s "$pid")")
	if [ "$hwm_reset" = 1 ]; then R[$name.rss_get]=$(vmhwm_mib "$pid"); else R[$name.rss_get]=nan; fi
	if [ "$name" = berth ]; then
		profile "$name" "$pid" "wrk on a 4 KiB blob" wrk_rps "$url" "$hdr" >/dev/null
	fi

	# (e) peak RSS of the whole run.
	R[$name.rss_end]=$(vmhwm_mib "$pid")
	# berth's answers of 5xx: each made a client send its request again (a
	# whole blob, for a failed commit), so the figures of a run with any are
	# lower than the server's own speed. The first one's log line is kept.
	if [ "$name" != distribution ]; then
		R[$name.errors]=$(grep -c 'msg=request .* status=5[0-9][0-9] ' "$dir/server.log" || true)
		R[$name.first_error]=$(grep -m 1 'level=ERROR msg="internal error"' "$dir/server.log" | sed 's/.* err=//' | cut -c1-300 || true)
	fi
	stop_pid "$pid"
	SERVER_PID=
	rm -rf "$dir/data"
	[ "$name" != scaleout ] || stop_scaleout
	log "$name: done"
}

# Other work on the machine skews every figure: say so, and with
# BENCH_WAIT_IDLE=1 wait (at most 10 minutes) for the 1-minute load to drop below 1.
if [ "${BENCH_WAIT_IDLE:-0}" = 1 ]; then
	for i in $(seq 1 60); do
		awk '{ exit !($1 < 1) }' /proc/loadavg && break
		[ "$i" = 1 ] && log "waiting for the machine to be idle (load $(cut -d' ' -f1 /proc/loadavg))"
		sleep 10
	done
fi
if awk -v n="$(nproc)" '{ exit !($1 > n / 2) }' /proc/loadavg; then
	log "warning: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; the figures will be low and noisy"
fi
load_before=$(cut -d" " -f1-3 /proc/loadavg)
t0=$(now)
bench_server berth
[ "$scaleout" = 0 ] || bench_server scaleout
bench_server distribution
elapsed=$(since "$t0")

# ---- report ----
ratio() { div "${R[berth.$1]}" "${R[distribution.$1]}"; }
inv_ratio() { div "${R[distribution.$1]}" "${R[berth.$1]}"; } # for durations: speedup
fmt() { awk -v v="$1" -v d="${2:-1}" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf "%.*f", d, v }'; }
# verdict ACTUAL TARGET: "met" or "missed by N%"
verdict() { awk -v a="$1" -v t="$2" 'BEGIN { if (a == "nan") print "n/a"; else if (a >= t) print "met"; else { m = (t - a) / t * 100; printf "**missed** by %.*f%%", (m < 1 ? 1 : 0), m } }'; }
verdict_max() { awk -v a="$1" -v t="$2" 'BEGIN { if (a == "nan") print "n/a"; else if (a < t) print "met"; else { m = (a - t) / t * 100; printf "**missed** by %.*f%%", (m < 1 ? 1 : 0), m } }'; }

get_ratio=$(div "${R[berth.a_get]}" "${R[loopback]}")
disk_ratio=$(div "${R[berth.a_push]}" "${R[disk]:-nan}")
# Targets missed, with how far off they are and which profile explains them.
missed=()
miss() { # miss VERDICT WHAT TEXT [PROFILE]
	case $1 in
	*missed*)
		local line="- $2 $(sed 's/\*\*//g' <<<"$1"): $3."
		[ -z "${4:-}" ] || [ "$perf_ok" != 1 ] || line="$line See the profile \"$4\" below."
		missed+=("$line")
		;;
	esac
}
miss "$(verdict "$(ratio a_push)" 2.5)" "(a) push" "berth $(fmt "${R[berth.a_push]}") MB/s is $(fmt "$(ratio a_push)" 2)x distribution; the target 2.5x is $(fmt "$(awk -v d="${R[distribution.a_push]}" 'BEGIN { print d * 2.5 }')") MB/s" "berth: crane push of a 256 MiB layer"
miss "$(verdict "$disk_ratio" 0.8)" "(a) push against the disk" "berth $(fmt "${R[berth.a_push]}") MB/s is $(fmt "$(awk -v r="$disk_ratio" 'BEGIN { print r * 100 }')" 0)% of this disk's fsynced write speed ($(fmt "${R[disk]:-nan}") MB/s), target 80%" "berth: crane push of a 256 MiB layer"
miss "$(verdict "$get_ratio" 0.9)" "(a) raw blob GET" "$(fmt "${R[berth.a_get]}") MB/s is $(fmt "$(awk -v r="$get_ratio" 'BEGIN { print r * 100 }')" 0)% of loopback, target 90%"
miss "$(verdict "$(ratio c_tiny)" 3)" "(c) tiny images" "berth $(fmt "${R[berth.c_tiny]}") images/s is $(fmt "$(ratio c_tiny)" 2)x distribution, target 3x" "berth: $TINY tiny images pushed 8 at a time"
miss "$(verdict "$(ratio d_manifest)" 15)" "(d) manifest GETs" "$(fmt "$(ratio d_manifest)" 2)x distribution, target 15x" "berth: wrk on a manifest"
miss "$(verdict "$(ratio d_blob)" 20)" "(d) blob GETs" "$(fmt "$(ratio d_blob)" 2)x distribution, target 20x" "berth: wrk on a 4 KiB blob"
if [ "$scaleout" = 1 ]; then
	# Issue 21's targets for PostgreSQL + S3 against embedded, same run.
	for t in "a_push 0.6 (a) push" "d_manifest 0.8 (d) manifest GETs" "d_blob 0.5 (d) 4 KiB blob GETs" "c_tiny 0.7 (c) tiny images"; do
		read -r key target what <<<"$t"
		r=$(div "${R[scaleout.$key]}" "${R[berth.$key]}")
		miss "$(verdict "$r" "$target")" "scale-out $what" "PostgreSQL + S3 is $(fmt "$r" 2)x embedded, target ${target}x"
	done
	miss "$(verdict_max "${R[scaleout.rss_push]}" 64)" "scale-out (e) peak RSS" "$(fmt "${R[scaleout.rss_push]}") MiB while pushing 256 MiB to S3, target under 64 MiB"
fi
miss "$(verdict_max "${R[berth.rss_push]}" 64)" "(e) peak RSS" "$(fmt "${R[berth.rss_push]}") MiB while pushing 256 MiB, target under 64 MiB"
miss "$(verdict_max "${R[berth.rss_get]:-nan}" 64)" "(e) peak RSS of the GETs" "$(fmt "${R[berth.rss_get]:-nan}") MiB while answering (d), target under 64 MiB"
for n in berth scaleout; do
	[ "${R[$n.errors]:-0}" = 0 ] || missed+=("- berth answered ${R[$n.errors]} requests with a 5xx in the $([ $n = berth ] && echo embedded || echo PostgreSQL + S3) run; each client sent its request again, so that run's figures are lower than they should be. The first error: ${R[$n.first_error]:-(none logged)}")
done
mkdir -p "$(dirname "$OUT")"
# Everything after this line of $OUT is written by hand and kept.
KEEP_MARK='<!-- bench/run.sh writes what is above this line; the sections below are written by hand and kept when it runs again. -->'
if [ -f "$OUT" ]; then
	awk -v m="$KEEP_MARK" 'f { print } $0 == m { f = 1 }' "$OUT" >"$work/kept.md"
else
	: >"$work/kept.md"
fi
{
	cat <<EOF
# Benchmarks

Written by \`bench/run.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r), $(go version | cut -d' ' -f3)).
berth at commit ${R[berth.version]}; CNCF Distribution ${R[distribution.version]} (Debian \`docker-registry\`, filesystem storage,
in-memory blob descriptor cache). Both ran on 127.0.0.1, one after the other, on fresh data dirs, with the
same clients: crane $(crane version) and wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo '?'). Medians of $REPS runs for (a) to (c),
each on new random content; one ${WRK_SECONDS} s wrk run (2 threads, 16 connections) for (d). MB = 10^6 bytes.
Authentication: $([ "${R[berth.auth]}" = on ] && echo "on for berth (its initial admin: crane through a docker config, curl and wrk with a bearer token from /oauth2/token); distribution runs without" || echo "off (berth had none when this ran)").
Total benchmark time: $(fmt "$elapsed" 0) s; load average before it: $load_before (other work on the machine skews the figures).

| | berth | distribution 2.8 | berth / distribution | target | |
|---|---:|---:|---:|---|---|
| (a) push, one 256 MiB layer (MB/s) | $(fmt "${R[berth.a_push]}") | $(fmt "${R[distribution.a_push]}") | $(fmt "$(ratio a_push)" 2)x | ≥ 2.5x | $(verdict "$(ratio a_push)" 2.5) |
| (a) push as a share of this disk's fsynced writes ($(fmt "${R[disk]:-nan}") MB/s) | $(fmt "$(awk -v r="$disk_ratio" 'BEGIN { print r * 100 }')" 0)% | $(fmt "$(awk -v a="${R[distribution.a_push]}" -v d="${R[disk]:-nan}" 'BEGIN { if (d == "nan") print "nan"; else print a / d * 100 }')" 0)% | | berth ≥ 80% | $(verdict "$disk_ratio" 0.8) |
| (a) push: server CPU s per GiB pushed | $(fmt "${R[berth.a_push_cpu]}" 2) | $(fmt "${R[distribution.a_push_cpu]}" 2) | $(fmt "$(ratio a_push_cpu)" 2)x | | |
| (a) pull, one 256 MiB layer (MB/s) | $(fmt "${R[berth.a_pull]}") | $(fmt "${R[distribution.a_pull]}") | $(fmt "$(ratio a_pull)" 2)x | | |
| (a) raw blob GET, 256 MiB, curl (MB/s) | $(fmt "${R[berth.a_get]}") | $(fmt "${R[distribution.a_get]}") | $(fmt "$(ratio a_get)" 2)x | ≥ 90% of loopback ($(fmt "${R[loopback]}") MB/s): $(fmt "$(awk -v r="$get_ratio" 'BEGIN { print r * 100 }')" 0)% | $(verdict "$get_ratio" 0.9) |
| (b) push, 50 × 1 MiB layers (s) | $(fmt "${R[berth.b_push_s]}" 2) | $(fmt "${R[distribution.b_push_s]}" 2) | $(fmt "$(inv_ratio b_push_s)" 2)x (speed) | | |
| (b) pull, 50 × 1 MiB layers (s) | $(fmt "${R[berth.b_pull_s]}" 2) | $(fmt "${R[distribution.b_pull_s]}" 2) | $(fmt "$(inv_ratio b_pull_s)" 2)x (speed) | | |
| (c) tiny images pushed, 8 at a time (images/s) | $(fmt "${R[berth.c_tiny]}") | $(fmt "${R[distribution.c_tiny]}") | $(fmt "$(ratio c_tiny)" 2)x | ≥ 3x | $(verdict "$(ratio c_tiny)" 3) |
| (c) tiny images: server CPU s per image | $(fmt "${R[berth.c_tiny_cpu]}" 4) | $(fmt "${R[distribution.c_tiny_cpu]}" 4) | $(fmt "$(ratio c_tiny_cpu)" 2)x | | |
| (c) tiny images: client CPU s per image | $(fmt "${R[berth.c_tiny_client_cpu]}" 4) | $(fmt "${R[distribution.c_tiny_client_cpu]}" 4) | | | |
| (c) tiny images, a crane process each (images/s) | $(fmt "${R[berth.c_tiny_crane]}") | $(fmt "${R[distribution.c_tiny_crane]}") | $(fmt "$(ratio c_tiny_crane)" 2)x | | |
| (c) tiny images, a crane process each: client CPU s per image | $(fmt "${R[berth.c_tiny_crane_cpu]}" 4) | $(fmt "${R[distribution.c_tiny_crane_cpu]}" 4) | | | |
| (d) manifest GETs/s | $(fmt "${R[berth.d_manifest]}" 0) | $(fmt "${R[distribution.d_manifest]}" 0) | $(fmt "$(ratio d_manifest)" 2)x | ≥ 15x | $(verdict "$(ratio d_manifest)" 15) |
| (d) manifest GETs: server CPU s per 1,000 | $(fmt "${R[berth.d_manifest_cpu]}" 3) | $(fmt "${R[distribution.d_manifest_cpu]}" 3) | $(fmt "$(ratio d_manifest_cpu)" 2)x | | |
| (d) 4 KiB blob GETs/s | $(fmt "${R[berth.d_blob]}" 0) | $(fmt "${R[distribution.d_blob]}" 0) | $(fmt "$(ratio d_blob)" 2)x | ≥ 20x | $(verdict "$(ratio d_blob)" 20) |
| (d) 4 KiB blob GETs: server CPU s per 1,000 | $(fmt "${R[berth.d_blob_cpu]}" 3) | $(fmt "${R[distribution.d_blob_cpu]}" 3) | $(fmt "$(ratio d_blob_cpu)" 2)x | | |
| (e) peak RSS after the 256 MiB pushes (MiB) | $(fmt "${R[berth.rss_push]}") | $(fmt "${R[distribution.rss_push]}") | $(fmt "$(ratio rss_push)" 2)x | berth < 64 MiB | $(verdict_max "${R[berth.rss_push]}" 64) |
| (e) peak RSS during the GETs of (d) (MiB) | $(fmt "${R[berth.rss_get]:-nan}") | $(fmt "${R[distribution.rss_get]:-nan}") | $(fmt "$(ratio rss_get)" 2)x | berth < 64 MiB | $(verdict_max "${R[berth.rss_get]:-nan}" 64) |
| (e) peak RSS over the whole run (MiB) | $(fmt "${R[berth.rss_end]}") | $(fmt "${R[distribution.rss_end]}") | $(fmt "$(ratio rss_end)" 2)x | | |

$(if [ ${#missed[@]} -gt 0 ]; then printf 'Targets missed in this run:\n\n'; printf '%s\n' "${missed[@]}"; else printf 'Every target was met in this run.'; fi)

Runs on this virtual machine differ by up to a third from one to the next (seen for (a) push and the
loopback figure), so compare the ratios of one run rather than figures across runs.

Reference points for the issue's machine: about 1,650 MB/s single-core sha256, 720 MB/s
fsynced disk writes and 1,750 MB/s loopback. This run measured this disk's fsynced writes itself
(\`dd bs=1M conv=fsync\` of the 256 MiB layer, from the page cache, into the bench's folder, best of 3).
Distribution does not fsync blobs; berth does, so (a) push is bounded by the disk.

How each figure is taken: (a) and (b) time \`crane push --insecure LAYOUT REF\` of an OCI layout written
by \`bench/mkimage\` (uncompressed tar layers of random bytes) and \`crane pull --insecure --format oci\`;
MB/s counts the layer and config bytes. The raw GET is \`curl -o /dev/null\` of the layer blob, best of 5; loopback
is the same file from \`bench/fileserve\` (Go's http.ServeContent), best of 5. (c) pushes $TINY
one-layer images 8 at a time with \`bench/tinypush\`: one process, go-containerregistry's \`remote.Write\` (what crane
runs) per image, each over connections of its own and with its own token exchange, as independent CI jobs would;
the row "a crane process each" is \`xargs -P 8 crane push\` of as many other images, where on this machine
the clients' own CPU (the row below it: a Go process started, configured and ended per image) bounds the run, so
that row shows the client more than the servers. The client CPU rows are the user + system time of the client
processes the bench waited for (bash's \`times\`). (d) is \`wrk -t2 -c16 -d${WRK_SECONDS}s\` on \`GET /v2/bench/tiny-1-0/manifests/latest\` and on a
4096-byte blob. (e) is VmHWM from /proc/PID/status. The CPU rows are the server process's user + system
time (all its threads, from /proc/PID/stat) over the measured runs of that figure, divided by the work done:
GiB of layer and config pushed, images pushed, requests wrk saw answered; less is better, and on a shared
machine they are steadier than the throughputs.
EOF
	if [ "$scaleout" = 1 ]; then
		sratio() { div "${R[scaleout.$1]}" "${R[berth.$1]}"; }
		sinv() { div "${R[berth.$1]}" "${R[scaleout.$1]}"; }
		cat <<EOF

## Scale-out: PostgreSQL + S3 against the embedded configuration

The same berth binary, measured in the same run right after the embedded one (SQLite and blobs on disk
in the data folder), with \`--db\` a fresh schema of the PostgreSQL $(psql -qtA "$PG_BASE" -c 'SHOW server_version' 2>/dev/null | cut -d' ' -f1) on 127.0.0.1:5432 and
\`--blobs s3://…\` a bucket of versitygw (its posix backend over the same local disk, with \`--keep-alive\`) on loopback
over ${S3_SCHEME:-http} ($( [ "${S3_SCHEME:-http}" = https ] && echo "BENCH_S3_TLS=1, a self-signed certificate: payloads are sent unsigned, TLS protects them" || echo "every 64 KiB chunk of a payload is signed by berth and checked by versitygw; BENCH_S3_TLS=1 measures https")),
presigned redirects off (the default), so every blob byte passes through berth and then versitygw, and \`pointers=true\` (docs/deploy.md).
Everything shares the machine's $(nproc) cores: the figures are a floor for a deployment where
PostgreSQL and the object store run elsewhere, and the ratios show what the shared stores cost one replica. The versitygw / PostgreSQL rows are those
servers' CPU over the same measured runs (PostgreSQL: all its processes), what the machine spent beside berth.

| | embedded | PostgreSQL + S3 | PostgreSQL + S3 / embedded |
|---|---:|---:|---:|
| (a) push, one 256 MiB layer (MB/s) | $(fmt "${R[berth.a_push]}") | $(fmt "${R[scaleout.a_push]}") | $(fmt "$(sratio a_push)" 2)x |
| (a) push: berth CPU s per GiB pushed | $(fmt "${R[berth.a_push_cpu]}" 2) | $(fmt "${R[scaleout.a_push_cpu]}" 2) | $(fmt "$(sratio a_push_cpu)" 2)x |
| (a) push: versitygw / PostgreSQL CPU s per GiB pushed | | $(fmt "${R[scaleout.a_push_s3cpu]}" 2) / $(fmt "${R[scaleout.a_push_pgcpu]}" 2) | |
| (a) pull, one 256 MiB layer (MB/s) | $(fmt "${R[berth.a_pull]}") | $(fmt "${R[scaleout.a_pull]}") | $(fmt "$(sratio a_pull)" 2)x |
| (a) raw blob GET, 256 MiB, curl (MB/s) | $(fmt "${R[berth.a_get]}") | $(fmt "${R[scaleout.a_get]}") | $(fmt "$(sratio a_get)" 2)x |
| (b) push, 50 × 1 MiB layers (s) | $(fmt "${R[berth.b_push_s]}" 2) | $(fmt "${R[scaleout.b_push_s]}" 2) | $(fmt "$(sinv b_push_s)" 2)x (speed) |
| (b) pull, 50 × 1 MiB layers (s) | $(fmt "${R[berth.b_pull_s]}" 2) | $(fmt "${R[scaleout.b_pull_s]}" 2) | $(fmt "$(sinv b_pull_s)" 2)x (speed) |
| (c) tiny images pushed, 8 at a time (images/s) | $(fmt "${R[berth.c_tiny]}") | $(fmt "${R[scaleout.c_tiny]}") | $(fmt "$(sratio c_tiny)" 2)x |
| (c) tiny images: berth CPU s per image | $(fmt "${R[berth.c_tiny_cpu]}" 4) | $(fmt "${R[scaleout.c_tiny_cpu]}" 4) | $(fmt "$(sratio c_tiny_cpu)" 2)x |
| (c) tiny images: versitygw / PostgreSQL CPU s per image | | $(fmt "${R[scaleout.c_tiny_s3cpu]}" 4) / $(fmt "${R[scaleout.c_tiny_pgcpu]}" 4) | |
| (c) tiny images, a crane process each (images/s) | $(fmt "${R[berth.c_tiny_crane]}") | $(fmt "${R[scaleout.c_tiny_crane]}") | $(fmt "$(sratio c_tiny_crane)" 2)x |
| (d) manifest GETs/s | $(fmt "${R[berth.d_manifest]}" 0) | $(fmt "${R[scaleout.d_manifest]}" 0) | $(fmt "$(sratio d_manifest)" 2)x |
| (d) manifest GETs: berth CPU s per 1,000 | $(fmt "${R[berth.d_manifest_cpu]}" 3) | $(fmt "${R[scaleout.d_manifest_cpu]}" 3) | $(fmt "$(sratio d_manifest_cpu)" 2)x |
| (d) 4 KiB blob GETs/s | $(fmt "${R[berth.d_blob]}" 0) | $(fmt "${R[scaleout.d_blob]}" 0) | $(fmt "$(sratio d_blob)" 2)x |
| (d) 4 KiB blob GETs: berth CPU s per 1,000 | $(fmt "${R[berth.d_blob_cpu]}" 3) | $(fmt "${R[scaleout.d_blob_cpu]}" 3) | $(fmt "$(sratio d_blob_cpu)" 2)x |
| (e) peak RSS of berth after the 256 MiB pushes (MiB) | $(fmt "${R[berth.rss_push]}") | $(fmt "${R[scaleout.rss_push]}") | $(fmt "$(sratio rss_push)" 2)x |
| (e) peak RSS of berth during the GETs of (d) (MiB) | $(fmt "${R[berth.rss_get]:-nan}") | $(fmt "${R[scaleout.rss_get]:-nan}") | $(fmt "$(sratio rss_get)" 2)x |
EOF
	fi
	if [ -s "$work/berth.perf.md" ] || [ -s "$work/distribution.perf.md" ]; then
		cat <<EOF

## Where the time goes

CPU profiles of the server taken during extra, unmeasured runs with
\`perf record -e cpu-clock -F 999 -p PID\`: the share of samples by Go package (the kernel as one), then
the 15 hottest symbols, kernel (\`[k]\`) and user (\`[.]\`). Debian's docker-registry is stripped, so its
own code shows as addresses.
EOF
		cat "$work/berth.perf.md" "$work/distribution.perf.md" 2>/dev/null || true
	fi
	# The hand-written sections below the marker are kept as they are.
	echo
	echo "$KEEP_MARK"
	cat "$work/kept.md"
} >"$OUT.new"
mv "$OUT.new" "$OUT"

log "wrote $OUT in $(fmt "$elapsed" 0) s"
cat "$OUT"
