# raftkv — every target installs and builds what it needs first.
SEEDS ?= 100
SCENARIO ?=
NPM_STAMP := node_modules/.package-lock.json

.PHONY: install build test soak run bench bench-sim clean

$(NPM_STAMP): package.json package-lock.json
	npm ci
	@touch $@

install: $(NPM_STAMP)

build: install
	npx tsc -p tsconfig.json

## The whole test suite (unit, simulator scenarios, storage, transport, checker).
test: build
	npx vitest run

## Every simulator scenario under SEEDS seeds on all cores: make soak SEEDS=1000 [SCENARIO=Figure8Unreliable]
soak: build
	node build/test/sim/soak.js --seeds $(SEEDS) $(if $(SCENARIO),--scenario $(SCENARIO))

## Until kv-server exists: a narrated 3-node cluster in the simulator.
run: build
	node build/test/sim/demo.js

bench: bench-sim

bench-sim: build
	node build/test/bench/sim-bench.js

clean:
	rm -rf build
