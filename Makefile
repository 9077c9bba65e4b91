# clockd build, test and simulation targets.
GO      ?= go
SEEDS   ?= 10000
PKGS    := ./...

.PHONY: build test sim lint demo clean bench-consensus bench-tracecat bench-time plots proto

# The whole demo: builds clockd, starts three `clockd run` processes on
# loopback (one with a wall clock an hour fast), prints the status and each
# node's reading, takes timestamps, kills the leader with SIGKILL and shows
# the failover with every reading still monotone, runs a run-book across the
# hosts, then stops cleanly.
demo:
	$(GO) build -o bin/clockd ./cmd/clockd
	./bin/clockd demo

build:
	$(GO) build -o bin/ $(PKGS)

# Every test, as CI runs it: installs systemd's checkers if missing, vet,
# then the race detector over everything (the simulator runs its 2,000
# default seeds; real clockd processes run on loopback).
test:
	./scripts/test-deps.sh
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 20m $(PKGS)

# More simulator seeds than CI: make sim SEEDS=100000
sim:
	$(GO) test ./consensus/sim -run 'TestSimulation|TestBrokenVariants' -seeds $(SEEDS) -timeout 0 -v

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# clockd against hashicorp/raft on this machine, in one run: 3-node clusters,
# one OS process per node, loopback, fsync on; about 5 minutes. Pass flags
# with BENCH_FLAGS, e.g. make bench-consensus BENCH_FLAGS='--json --repeat 3'.
# The tables in BENCHMARKS.md come from this target.
bench-consensus:
	$(GO) build -ldflags "-X main.revision=$$(git describe --always --dirty 2>/dev/null || echo unknown)" \
		-o bin/bench-consensus ./bench/consensus
	./bin/bench-consensus $(BENCH_FLAGS)

# tracecat merge against LC_ALL=C sort -m over 8 files of 500,000 events,
# then the ordered event log's append throughput on a 3-node loopback
# cluster; the tables in BENCHMARKS.md come from this target.
bench-tracecat:
	$(GO) build -o bin/tracecat ./cmd/tracecat
	$(GO) run ./bench/tracecat --tracecat bin/tracecat --part all $(BENCH_FLAGS)

# clockd's time paths against their peers on this machine, in one run: Now
# over gRPC against the same server's gRPC health check, batched Timestamp
# throughput, a shared-page read against time.Now(), and NTP query latency
# against chronyd (installed by scripts/bench-deps.sh); a 3-node loopback
# cluster of real clockd processes, about 3 minutes. Pass flags with
# BENCH_FLAGS, e.g. make bench-time BENCH_FLAGS='--json --repeat 5'.
bench-time:
	./scripts/bench-deps.sh
	$(GO) build -o bin/clockd ./cmd/clockd
	$(GO) build -ldflags "-X main.buildRevision=$$(git describe --always --dirty 2>/dev/null || echo unknown)" \
		-o bin/bench-time ./bench/time
	./bin/bench-time --clockd bin/clockd $(BENCH_FLAGS)

# The VM-migration figures in docs/img, computed from vmclock.At (ρ_vm = 5000 ppm
# for readability): vm-migration-behind.png and vm-migration-ahead.png.
plots:
	$(GO) run ./cmd/vmplot --out docs/img

# Regenerate api/clockdv1 from api/proto/clockd/v1/*.proto; installs protoc
# (Debian) and the pinned Go plugins into bin/tools when missing.
proto:
	./scripts/proto.sh

clean:
	rm -rf bin
