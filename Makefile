# raftkv — every target installs and builds what it needs first.
SEEDS ?= 100
SCENARIO ?=
CRASH_ROUNDS ?= 50
PARTITION_ROUNDS ?= 10
NPM_STAMP := node_modules/.package-lock.json

.PHONY: install build test soak run bench bench-sim bench-storage bench-checker bench-kv bench-snapshot bench-overload bench-memory clean

$(NPM_STAMP): package.json package-lock.json
	npm ci
	@touch $@

install: $(NPM_STAMP)

build: install
	npx tsc -p tsconfig.json

## The whole test suite (unit, simulator scenarios, storage, transport, checker).
test: build
	npx vitest run

## The real-process fault tests, kill -9 and power loss over CRASH_ROUNDS rounds each and network
## partitions over PARTITION_ROUNDS rounds (unless SCENARIO is given), then every simulator
## scenario under SEEDS seeds on all cores: make soak SEEDS=1000 [SCENARIO=Figure8Unreliable]
soak: build
	$(if $(SCENARIO),,RAFTKV_CRASH_ROUNDS=$(CRASH_ROUNDS) RAFTKV_POWERLOSS_ROUNDS=$(CRASH_ROUNDS) RAFTKV_PARTITION_ROUNDS=$(PARTITION_ROUNDS) \
		npx vitest run test/e2e/crash.test.ts test/e2e/power-loss.test.ts test/e2e/partition.test.ts)
	node build/test/sim/soak.js --seeds $(SEEDS) $(if $(SCENARIO),--scenario $(SCENARIO))

## A local 3-node cluster (peers 7001-7003, clients 9001-9003, data in ./data); Ctrl-C stops it.
## TLS=1: mutual TLS on both ports, with a throwaway CA and certificates made by openssl in ./data/certs.
TLS ?=
run: build
	RAFTKV_TLS=$(TLS) node scripts/run-cluster.mjs

## Every benchmark; the figures and the machine they were measured on are kept in BENCHMARKS.md.
bench: bench-kv bench-sim bench-storage bench-checker bench-snapshot bench-overload bench-memory

## The lab's 2A-2C suite under one seed in the simulator: wall time against virtual time.
bench-sim: build
	node build/test/bench/sim-bench.js

## Durable appends/s through SqliteStorage against raw SQLite on the same disk.
bench-storage: build
	node build/test/bench/storage-bench.js

## The linearizability checker on 10,000 operations.
bench-checker: build
	node build/test/bench/linearizability-bench.js

## KV throughput and latency (kv-bench) on a fresh local 3-node cluster: the standard table of issue 6.
## Quick: BENCH_DURATION=2 BENCH_WARMUP=0.5; with etcd side by side: BENCH_TARGETS=raftkv,etcd
## (apt-get install etcd-server); more in scripts/bench-cluster.mjs.
bench-kv: build
	node scripts/bench-cluster.mjs

## Snapshots (issue 5): 1,000,000 puts into a fresh 3-node cluster, then each node's data-dir size
## against the live data, a follower's restart time and a wiped follower's replacement (a new node started
## with --join, added as a learner) catching up.
## Quick: BENCH_PUTS=50000; more in scripts/bench-snapshot.mjs.
bench-snapshot: build
	node scripts/bench-snapshot.mjs

## Overload (issue 11): the peak, then 10× the clients that reach it for 30 s: goodput, leader
## changes, errors. Quick: BENCH_PEAK_DURATION=3 BENCH_OVERLOAD_DURATION=10.
bench-overload: build
	node scripts/bench-overload.mjs

## Memory (issue 14): 1,000,000 puts over 1,000,000 keys; every 3 s each node's RSS split into
## malloc, V8's heap and files, its log and snapshot index. Quick: BENCH_PUTS=100000.
bench-memory: build
	node scripts/bench-memory.mjs

clean:
	rm -rf build
