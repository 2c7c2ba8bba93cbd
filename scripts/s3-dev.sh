#!/usr/bin/env bash
# Runs a local S3 service for development and multi-replica tests: versitygw
# (the one .ci/run installs, pinned, into ${BERTH_TOOLS:-~/.cache/berth-tools}/bin;
# BERTH_VERSITYGW overrides its path) on 127.0.0.1:PORT over DIR, with the
# bucket BUCKET created. It prints the environment and the --blobs URL that
# point berth at it, then runs in the foreground until interrupted.
#
#   scripts/s3-dev.sh [PORT] [DIR] [BUCKET]     (defaults: 7070, ./s3-data, berth)
#
# The credentials are fixed development ones; never expose the port.
set -euo pipefail

port=${1:-7070}
dir=${2:-./s3-data}
bucket=${3:-berth}
tools=${BERTH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-tools}
bin=${BERTH_VERSITYGW:-$tools/bin/versitygw}
if [ ! -x "$bin" ]; then
	echo "versitygw not found at $bin; install it with: bash .ci/run (or GOBIN=$tools/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)" >&2
	exit 1
fi
mkdir -p "$dir/$bucket"
export ROOT_ACCESS_KEY=berth-dev ROOT_SECRET_KEY=berth-dev-secret-key
cat <<INFO
export AWS_ACCESS_KEY_ID=$ROOT_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$ROOT_SECRET_KEY
--blobs 's3://$bucket?endpoint=127.0.0.1:$port&region=us-east-1&insecure=true'
INFO
exec "$bin" --port "127.0.0.1:$port" --quiet posix "$dir"
