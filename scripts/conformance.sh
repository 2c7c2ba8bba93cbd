#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite against a berth binary.
#
#   scripts/conformance.sh BIN [OUTDIR]
#   scripts/conformance.sh --distribution [OUTDIR]   (same run against Debian's
#                                                     docker-registry, for comparison)
#
# It builds nothing: BIN is an already built berth binary, and the suite is the
# `conformance` binary that .ci/run installs (pinned) into
# ${BERTH_TOOLS:-~/.cache/berth-tools}/bin; CONFORMANCE_BIN overrides its path.
# It starts `BIN serve` on a free 127.0.0.1 port with a fresh temporary data dir,
# waits for /healthz, runs the suite, stops the server and exits non-zero if any
# check failed. OUTDIR (default ./conformance-results, or $CONFORMANCE_OUT)
# receives the suite's results.yaml, report.html, junit.xml, its full output
# (output.txt, stderr.txt) and the server log (server.log).
#
# Environment:
#   OCI_USERNAME / OCI_PASSWORD  credentials for the suite (Basic, or the token
#                                flow the server's challenge asks for). If unset
#                                and the server wrote DATA/initial-admin.json, its
#                                client_id/client_secret are used, unless
#                                CONFORMANCE_AUTH=none (then anonymous).
#   CONFORMANCE_ALLOW_SKIP=1     do not fail on checks the suite skipped because
#                                the registry answered "unsupported" (default: a
#                                skip fails, since every 1.1 feature is switched on).
#   CONFORMANCE_FILTER           passed as OCI_FILTER_TEST (run one branch only).
#   CONFORMANCE_LOG              suite log level (OCI_LOG), default warn.
#   BERTH_SERVE_ARGS             extra flags for `BIN serve` (e.g. --config FILE).
#   CONFORMANCE_REGISTRY=H:P     test an already running registry instead of
#                                starting one (BIN is then ignored).
#
# Suite configuration (this pinned suite version is configured by OCI_* env vars;
# OCI_VERSION=1.1 sets the 1.1 defaults and the rest switch on everything 1.1 has):
#   OCI_REGISTRY=127.0.0.1:PORT  OCI_TLS=disabled (plain http on loopback)
#   OCI_REPO1=conformance/repo1  OCI_REPO2=conformance/repo2 (cross-mount source)
#   OCI_VERSION=1.1              OCI_RESULTS_DIR=OUTDIR  OCI_LOG=warn
#   OCI_CACHE_AUTH=true
#   OCI_API_PING OCI_API_PULL OCI_API_PUSH OCI_API_REFERRER                        =true
#   OCI_API_BLOBS_ATOMIC OCI_API_BLOBS_DELETE OCI_API_BLOBS_MOUNT_ANONYMOUS        =true
#   OCI_API_BLOBS_UPLOAD_CANCEL OCI_API_BLOBS_DIGEST_HEADER                        =true (off by default in 1.1)
#   OCI_API_MANIFESTS_ATOMIC OCI_API_MANIFESTS_DELETE                              =true
#   OCI_API_MANIFESTS_DIGEST_HEADER                                                =true (off by default in 1.1)
#   OCI_API_MANIFESTS_TAG_PARAM                                                    =false (post-1.1, "dev")
#   OCI_API_TAGS_ATOMIC OCI_API_TAGS_DELETE OCI_API_TAGS_LIST                      =true
#   OCI_DATA_IMAGE OCI_DATA_INDEX OCI_DATA_INDEX_LIST OCI_DATA_ARTIFACT            =true
#   OCI_DATA_SUBJECT OCI_DATA_SUBJECT_MISSING OCI_DATA_ARTIFACT_LIST               =true
#   OCI_DATA_SUBJECT_LIST OCI_DATA_DATA_FIELD OCI_DATA_NONDISTRIBUTABLE            =true
#   OCI_DATA_CUSTOM_FIELDS OCI_DATA_NO_LAYERS OCI_DATA_EMPTY_BLOB OCI_DATA_SHA512  =true
#   OCI_DATA_SPARSE                                                                =false
# The legacy variables of older suites (OCI_ROOT_URL, OCI_NAMESPACE,
# OCI_CROSSMOUNT_NAMESPACE, OCI_TEST_*, OCI_DEBUG, OCI_HIDE_SKIPPED_WORKFLOWS,
# OCI_DELETE_MANIFEST_BEFORE_BLOBS, OCI_AUTOMATIC_CROSSMOUNT) are not used; they
# are unset below so a stray one in the environment cannot change the run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

usage() { echo "usage: $0 BIN|--distribution [OUTDIR]" >&2; exit 2; }
[ $# -ge 1 ] || usage
target=$1
out=${2:-${CONFORMANCE_OUT:-./conformance-results}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/results.yaml "$out"/junit.xml "$out"/report.html "$out"/output.txt "$out"/stderr.txt "$out"/server.log

suite=${CONFORMANCE_BIN:-$(tools_dir)/bin/conformance}
if [ ! -x "$suite" ]; then
	suite=$(command -v conformance || true)
fi
if [ -z "$suite" ] || [ ! -x "$suite" ]; then
	echo "conformance.sh: suite binary not found (run .ci/run, or set CONFORMANCE_BIN)" >&2
	exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-conformance.XXXXXX")
SERVER_PID=
cleanup() {
	stop_pid "$SERVER_PID"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

data=$work/data
registry=${CONFORMANCE_REGISTRY:-}
if [ -n "$registry" ]; then
	echo "conformance.sh: testing the running registry at $registry"
elif [ "$target" = --distribution ]; then
	start_distribution "$work/distribution" "$out/server.log"
	SERVER_PID=$DIST_PID
	registry=127.0.0.1:$DIST_PORT
	echo "conformance.sh: docker-registry (pid $SERVER_PID) on $registry"
else
	[ -x "$target" ] || { echo "conformance.sh: $target is not an executable" >&2; exit 2; }
	mkdir -p "$data"
	start_berth "$target" "$data" "$out/server.log"
	SERVER_PID=$BERTH_PID
	registry=127.0.0.1:$BERTH_PORT
	echo "conformance.sh: berth (pid $SERVER_PID) on $registry, data $data"
fi

# Credentials: explicit OCI_USERNAME/OCI_PASSWORD win; else the initial admin.
if [ -z "${OCI_USERNAME:-}" ] && [ "${CONFORMANCE_AUTH:-auto}" != none ] && [ -f "$data/initial-admin.json" ]; then
	OCI_USERNAME=$(jq -r .client_id "$data/initial-admin.json")
	OCI_PASSWORD=$(jq -r .client_secret "$data/initial-admin.json")
	echo "conformance.sh: authenticating as the initial admin ($OCI_USERNAME)"
fi

unset OCI_ROOT_URL OCI_NAMESPACE OCI_CROSSMOUNT_NAMESPACE OCI_TEST_PULL OCI_TEST_PUSH \
	OCI_TEST_CONTENT_DISCOVERY OCI_TEST_CONTENT_MANAGEMENT OCI_DEBUG OCI_TAG_NAME \
	OCI_MANIFEST_DIGEST OCI_BLOB_DIGEST OCI_HIDE_SKIPPED_WORKFLOWS \
	OCI_DELETE_MANIFEST_BEFORE_BLOBS OCI_AUTOMATIC_CROSSMOUNT OCI_CONFIGURATION

env_args=(
	OCI_CONFIGURATION=/dev/null
	OCI_VERSION=1.1
	OCI_REGISTRY="$registry"
	OCI_TLS=disabled
	OCI_REPO1=conformance/repo1
	OCI_REPO2=conformance/repo2
	OCI_USERNAME="${OCI_USERNAME:-}"
	OCI_PASSWORD="${OCI_PASSWORD:-}"
	OCI_CACHE_AUTH=true
	OCI_LOG="${CONFORMANCE_LOG:-warn}"
	OCI_RESULTS_DIR="$out"
	OCI_FILTER_TEST="${CONFORMANCE_FILTER:-}"
	OCI_API_PING=true
	OCI_API_PULL=true
	OCI_API_PUSH=true
	OCI_API_BLOBS_ATOMIC=true
	OCI_API_BLOBS_DELETE=true
	OCI_API_BLOBS_DIGEST_HEADER=true
	OCI_API_BLOBS_MOUNT_ANONYMOUS=true
	OCI_API_BLOBS_UPLOAD_CANCEL=true
	OCI_API_MANIFESTS_ATOMIC=true
	OCI_API_MANIFESTS_DELETE=true
	OCI_API_MANIFESTS_DIGEST_HEADER=true
	OCI_API_MANIFESTS_TAG_PARAM=false
	OCI_API_TAGS_ATOMIC=true
	OCI_API_TAGS_DELETE=true
	OCI_API_TAGS_LIST=true
	OCI_API_REFERRER=true
	OCI_DATA_IMAGE=true
	OCI_DATA_INDEX=true
	OCI_DATA_INDEX_LIST=true
	OCI_DATA_SPARSE=false
	OCI_DATA_ARTIFACT=true
	OCI_DATA_SUBJECT=true
	OCI_DATA_SUBJECT_MISSING=true
	OCI_DATA_ARTIFACT_LIST=true
	OCI_DATA_SUBJECT_LIST=true
	OCI_DATA_DATA_FIELD=true
	OCI_DATA_NONDISTRIBUTABLE=true
	OCI_DATA_CUSTOM_FIELDS=true
	OCI_DATA_NO_LAYERS=true
	OCI_DATA_EMPTY_BLOB=true
	OCI_DATA_SHA512=true
)

start=$(date +%s)
rc=0
# The suite writes its results into OCI_RESULTS_DIR; run it from $work so
# that no stray oci-conformance.yaml in the caller's directory is read.
(cd "$work" && env "${env_args[@]}" timeout "${CONFORMANCE_TIMEOUT:-1200}" "$suite") \
	>"$out/output.txt" 2>"$out/stderr.txt" || rc=$?
elapsed=$(($(date +%s) - start))

stop_pid "$SERVER_PID"
SERVER_PID=

count() { # count STATUS: the suite's total for one status, from its summary.
	sed -n "s/^  $1\.*: *\([0-9][0-9]*\)$/\1/p" "$out/output.txt" | tail -n 1
}
pass=$(count Pass); fail=$(count FAIL); errs=$(count Error); skip=$(count Skip); disabled=$(count Disabled)
result=$(sed -n 's/^OCI Conformance Result: //p' "$out/output.txt" | tail -n 1)

# Show what did not pass (leaf lines and their error text), then the summary.
if grep -qE ': (FAIL|Error|Skip)$' "$out/output.txt"; then
	echo "--- checks that did not pass:"
	awk '/^OCI Conformance Result/ {show=0; next} /: (FAIL|Error|Skip)$/ {show=1; print; next} /^ *- / && show {print; next} {show=0}' "$out/output.txt" | head -n 400
fi
sed -n '/^OCI Conformance Result/,/^ *Total/p' "$out/output.txt"
if [ -s "$out/stderr.txt" ]; then
	grep -v 'level=WARN msg="failed test"' "$out/stderr.txt" | tail -n 20 || true
fi

ok=1
why=()
[ "$rc" = 0 ] || { ok=0; why+=("suite exit status $rc"); }
[ -s "$out/results.yaml" ] || { ok=0; why+=("no results.yaml (the suite did not finish)"); }
[ "$result" = Pass ] || { ok=0; why+=("suite result '${result:-none}'"); }
[ "${fail:-x}" = 0 ] || { ok=0; why+=("${fail:-?} failed"); }
[ "${errs:-x}" = 0 ] || { ok=0; why+=("${errs:-?} errors"); }
if [ "${skip:-0}" != 0 ] && [ "${CONFORMANCE_ALLOW_SKIP:-0}" != 1 ]; then
	ok=0; why+=("$skip skipped as unsupported (CONFORMANCE_ALLOW_SKIP=1 tolerates)")
fi

echo "conformance.sh: ${elapsed}s, report in $out (report.html, results.yaml, junit.xml, output.txt, server.log)"
echo "conformance: ${pass:-0} passed, $(( ${fail:-0} + ${errs:-0} )) failed, $(( ${skip:-0} + ${disabled:-0} )) skipped"
if [ "$ok" = 1 ]; then
	echo "conformance.sh: PASS"
	exit 0
fi
echo "conformance.sh: FAIL: ${why[*]}" >&2
exit 1
