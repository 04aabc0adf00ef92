#!/usr/bin/env bash
# bench/run.sh: build ringstore, start a fresh single-node server (or a
# cluster of --nodes N processes on 127.0.0.1..N) on temp data dirs, run the
# benchmark matrix against it (and optionally against another S3 endpoint),
# keep every result as JSON under bench/out/<date>-<commit>/ and print a
# markdown table. Against a cluster the client spreads its requests over
# every node's endpoint.
#
# Usage: bench/run.sh [--duration 10s] [--list-objects N | --full]
#                     [--cases "put-4KiB get-4KiB ..."] [--no-baseline]
#                     [--nodes N]
#
# Environment (flags win):
#   DURATION         measured time per case (default 10s)
#   LIST_OBJECTS     objects in the LIST bucket (default 10000; --full: 100000)
#   CASES            space-separated subset of the case names below
#   BASELINE=0       skip the per-case machine-limit measurements
#   OTHER_ENDPOINT, OTHER_ACCESS_KEY, OTHER_SECRET_KEY [, OTHER_NAME]
#                    also run the matrix against that endpoint
#   NODES            processes in the local cluster (default 1: one node
#                    alone; N > 1 needs 127.0.0.1..N, N=3 W=2 R=2)
#   PORT             S3 port of a single local server (default: any free port)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
LIST_OBJECTS=${LIST_OBJECTS:-10000}
BASELINE=${BASELINE:-1}
CASES=${CASES:-}
PORT=${PORT:-0}
NODES=${NODES:-1}

while [[ $# -gt 0 ]]; do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--list-objects) LIST_OBJECTS=$2; shift 2 ;;
	--full) LIST_OBJECTS=100000; shift ;;
	--cases) CASES=$2; shift 2 ;;
	--no-baseline) BASELINE=0; shift ;;
	--nodes) NODES=$2; shift 2 ;;
	-h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

command -v jq >/dev/null || { echo "run.sh: jq is needed to build the markdown table" >&2; exit 1; }

# The matrix: name mode object-size concurrency [extra flags].
MATRIX=(
	"put-4KiB     put    4KiB   32"
	"get-4KiB     get    4KiB   32"
	"stat-4KiB    stat   4KiB   32"
	"put-64KiB    put    64KiB  32"
	"get-64KiB    get    64KiB  32"
	"stat-64KiB   stat   64KiB  32"
	"put-64MiB    put    64MiB  8"
	"get-64MiB    get    64MiB  8"
	"list-1000    list   1KiB   8    --objects $LIST_OBJECTS --list-max-keys 1000"
	"mixed-4KiB   mixed  4KiB   32   --objects 2500"
)

cd "$ROOT"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo nogit)
if [[ -n $(git status --porcelain 2>/dev/null) ]]; then commit+="-dirty"; fi
OUT="$ROOT/bench/out/$(date -u +%Y%m%d-%H%M%S)-$commit"
mkdir -p "$OUT"
WORK=$(mktemp -d)
BIN="$WORK/ringstore"
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "building ringstore ($commit)" >&2
go build -o "$BIN" ./cmd/ringstore

# Fresh servers with fixed credentials on temp data dirs. The S3 port is
# picked by the kernel (the machine is shared) and read from the banner.
export RINGSTORE_ACCESS_KEY_ID=RSBENCH$(printf '%04d' $((RANDOM % 10000)))
export RINGSTORE_SECRET_ACCESS_KEY=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
export RINGSTORE_CLUSTER_SECRET=$(head -c 32 /dev/urandom | base64)

# port_free HOST PORT: nothing listens on HOST:PORT over TCP or UDP.
port_free() {
	! ss -Htuln "( sport = :$2 )" 2>/dev/null | grep -q .
}

# random_port HOST: a port in 20000-59999 that is free now.
random_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		if port_free "$1" "$p"; then echo "$p"; return; fi
	done
	echo "run.sh: no free port on $1" >&2
	exit 1
}

# start_node I: starts node I on 127.0.0.I. The nodes of a cluster form
# it together (--bootstrap-expect): a cluster grown one node at a time
# passes through a layout version per node, and until those retire (about
# 30 s) every write also needs the first node and reads go to it alone, so
# a run would measure the transition, not the cluster.
ENDPOINTS=()
GOSSIP1=
start_node() {
	local i=$1 host log args=()
	if [[ $NODES == 1 ]]; then
		host=127.0.0.1
		log="$OUT/server.log"
		args=(--s3-addr "$host:$PORT")
	else
		host=127.0.0.$i
		log="$OUT/server$i.log"
		local gossip="$host:$(random_port "$host")"
		args=(--s3-addr "$host:0" --rpc-addr "$host:$(random_port "$host")" --gossip-addr "$gossip" --zone "zone-$i" --bootstrap-expect "$NODES")
		if [[ $i == 1 ]]; then GOSSIP1=$gossip; RPC1=${args[3]}; else args+=(--join "$GOSSIP1"); fi
	fi
	"$BIN" server --data "$WORK/data$i" "${args[@]}" --log-level warn >"$log" 2>&1 &
	PIDS+=("$!")
}

# wait_node I: waits for node I to serve and appends its S3 endpoint to
# ENDPOINTS.
wait_node() {
	local i=$1 log="$OUT/server.log" pid=${PIDS[$(($1 - 1))]} ep=
	[[ $NODES == 1 ]] || log="$OUT/server$i.log"
	for _ in $(seq 300); do
		ep=$(sed -n 's/^ringstore S3 endpoint: //p' "$log")
		[[ -n $ep ]] && break
		kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
		sleep 0.1
	done
	[[ -n $ep ]] || { echo "run.sh: node $i did not start" >&2; cat "$log" >&2; exit 1; }
	ENDPOINTS+=("$ep")
}

for i in $(seq "$NODES"); do start_node "$i"; done
for i in $(seq "$NODES"); do wait_node "$i"; done
if [[ $NODES -gt 1 ]]; then
	# Benchmark only once every node sees every other alive, on one layout
	# version.
	status=
	for _ in $(seq 150); do
		status=$("$BIN" admin status --rpc "$RPC1" 2>/dev/null || true)
		if [[ $(grep -c ' alive ' <<<"$status") == "$NODES" ]] && ! grep -q unreachable <<<"$status" && ! grep -q 'data moving' <<<"$status"; then break; fi
		status=
		sleep 0.2
	done
	[[ -n $status ]] || { echo "run.sh: the cluster of $NODES never came up" >&2; exit 1; }
fi
ENDPOINT=$(IFS=,; echo "${ENDPOINTS[*]}")
echo "$NODES node(s) at $ENDPOINT (data under $WORK); results in $OUT" >&2

selected() { [[ -z $CASES ]] || [[ " $CASES " == *" $1 "* ]]; }

# run_matrix TARGET ENDPOINT ACCESS SECRET [extra flags for every case]
run_matrix() {
	local target=$1 endpoint=$2 access=$3 secret=$4
	shift 4
	local line name mode size conc extra
	for line in "${MATRIX[@]}"; do
		read -r name mode size conc extra <<<"$line"
		selected "$name" || continue
		echo "== $target $name ($DURATION)" >&2
		# shellcheck disable=SC2086 # extra is a list of flags
		if ! "$BIN" bench --json --endpoint "$endpoint" --access-key "$access" --secret-key "$secret" \
			--obj-size "$size" --concurrency "$conc" --duration "$DURATION" $extra "$@" "$mode" \
			>"$OUT/${target}__$name.json" 2>"$OUT/${target}__$name.log"; then
			echo "   failed: see $OUT/${target}__$name.log" >&2
			tail -3 "$OUT/${target}__$name.log" >&2
			rm -f "$OUT/${target}__$name.json"
		fi
	done
}

base=()
if [[ $BASELINE == 1 ]]; then
	# The group-commit test DB goes on the server's data disk.
	base=(--baseline --baseline-dir "$WORK")
fi
run_matrix ringstore "$ENDPOINT" "$RINGSTORE_ACCESS_KEY_ID" "$RINGSTORE_SECRET_ACCESS_KEY" "${base[@]}"
if [[ -n ${OTHER_ENDPOINT:-} ]]; then
	run_matrix "${OTHER_NAME:-other}" "$OTHER_ENDPOINT" "${OTHER_ACCESS_KEY:?set OTHER_ACCESS_KEY}" "${OTHER_SECRET_KEY:?set OTHER_SECRET_KEY}"
fi

# One markdown row per operation type of every result, then the machine
# limits each case measured (they move with the other load on the box).
# Results in matrix order, local server first.
results=()
for target in ringstore ${OTHER_ENDPOINT:+"${OTHER_NAME:-other}"}; do
	for line in "${MATRIX[@]}"; do
		read -r name _ <<<"$line"
		[[ -e "$OUT/${target}__$name.json" ]] && results+=("$OUT/${target}__$name.json")
	done
done
hsize='def hsize: if . >= 1048576 then "\(. / 1048576)MiB" elif . >= 1024 then "\(. / 1024)KiB" else "\(.)B" end;'
{
	echo "ringstore bench, commit $commit, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $NODES node(s), $DURATION per case"
	echo
	echo "| target | case | op | size | clients | ops/s | MiB/s | p50 ms | p99 ms | p99.9 ms | errors | vs baseline |"
	echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for f in "${results[@]}"; do
		c=$(basename "$f" .json)
		jq -r --arg target "${c%%__*}" --arg case "${c#*__}" "$hsize"'
			def r2: (. * 100 | round) / 100;
			.params as $p | .operations[] |
			"| \($target) | \($case) | \(.op) | \($p.obj_size | hsize) | \($p.concurrency) | \(.ops_per_s | r2) | " +
			"\(if .op == "PUT" or .op == "GET" then (.mib_per_s | r2 | tostring)
				elif .op == "LIST" then "\(.keys_per_s | round) keys/s" else "-" end) | " +
			"\(.latency.p50_ms | r2) | \(.latency.p99_ms | r2) | \(.latency.p99_9_ms | r2) | \(.errors) | " +
			"\([(.vs_baseline // [])[] | "\(.ratio * 1000 | round / 1000)x \(.limit)"] | join(", ")) |"' "$f"
	done
	if [[ $BASELINE == 1 ]]; then
		echo
		echo "| case | SHA-256+MD5 1 core MiB/s | SHA-256 ‖ MD5 MiB/s | pebble group commits/s | bare GET 4KiB ops/s | bare GET p99 ms |"
		echo "|---|---:|---:|---:|---:|---:|"
		for f in "${results[@]}"; do
			c=$(basename "$f" .json)
			[[ ${c%%__*} == ringstore ]] || continue
			jq -r --arg case "${c#*__}" '
				def r1: (. * 10 | round) / 10;
				.baseline // empty |
				"| \($case) | \(.sha256_md5_sequential_mib_per_s | r1) | \(.sha256_md5_parallel_mib_per_s | r1) | " +
				"\(.pebble_group_commits_per_s | round) | \(.bare_http_get_ops_per_s | round) | \(.bare_http_get_p99_ms | r1) |"' "$f"
		done
	fi
} | tee "$OUT/summary.md"
