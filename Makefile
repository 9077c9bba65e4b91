# clockd build, test and simulation targets.
GO      ?= go
SEEDS   ?= 10000
PKGS    := ./...

.PHONY: build test sim lint demo clean

# A local three-node cluster on loopback (real gRPC, bolt files with fsync):
# clients propose, the leader is killed and restarted, every node is checked.
demo:
	$(GO) run ./cmd/clockd dev

build:
	$(GO) build -o bin/ $(PKGS)

# Every test, as CI runs it: vet, then the race detector over everything
# (the simulator runs its 2,000 default seeds).
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 20m $(PKGS)

# More simulator seeds than CI: make sim SEEDS=100000
sim:
	$(GO) test ./consensus/sim -run 'TestSimulation|TestBrokenVariants' -seeds $(SEEDS) -timeout 0 -v

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
