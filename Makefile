# Lookout's commands. `make run` starts everything; `make test` proves it.
GO        ?= go
BIN       := bin/lookout
NODE_DIR  := testdata/node
ARGS      ?=

.PHONY: all build run demo test test-deps test-race bench bench-deps fuzz proto vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/lookout

# Embedded NATS, every service, data in ./lookout-data. `make run ARGS=--demo`
# also publishes a demo model.
run: build
	./$(BIN) run $(ARGS)

demo: build
	./$(BIN) run --demo $(ARGS)

# The Node packages the cross-language tests use (nats.js, DuckDB).
test-deps: $(NODE_DIR)/node_modules/.installed

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# ./... stops at nested modules; deploy/composecheck (the Compose loader's
# check, a module of its own to keep its dependencies out) is named too.
# The demo test runs the demo ten times faster than live, so it runs on its
# own after the rest: beside other packages a loaded machine's delays would
# count ten times in demo time.
test: test-deps vet
	$(GO) test -count=1 -timeout 30m -skip '^TestDemoShowsItAll$$' ./... ./deploy/composecheck/...
	$(GO) test -count=1 -timeout 10m -run '^TestDemoShowsItAll$$' ./cmd/lookout

test-race: test-deps
	$(GO) test -race -count=1 -timeout 45m ./...

# Benchmarks: Go's testing.B figures plus the end-to-end comparisons, written
# to BENCHMARKS.md.
bench: build bench-deps
	./scripts/bench.sh

# The drift comparison runs scipy and numpy from Debian (/usr/bin/python3).
bench-deps:
	@command -v bc >/dev/null && /usr/bin/python3 -c 'import scipy' 2>/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-scipy bc; }

# Runs each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./pkg/event -run '^$$' -fuzz '^FuzzDecodePrediction$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x
	$(GO) test ./pkg/event -run '^$$' -fuzz '^FuzzScannerAgreesWithEncodingJSON$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x
	$(GO) test ./pkg/event -run '^$$' -fuzz '^FuzzDecodeFeedback$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x

# Regenerates the Go types from proto/ (needs protoc; the output is committed).
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc --go_out=. --go_opt=module=github.com/lookout-ml/lookout proto/lookout/v1/*.proto

vet:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin lookout-data
