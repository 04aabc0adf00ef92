# Developer targets; .ci/run runs the same checks.
GO ?= go

.PHONY: test race sim fuzz lint bench integration run

test:            ## the whole suite, as README.md and CI run it
	$(GO) test ./...

race:            ## unit packages under the race detector
	$(GO) test -race ./auth/ ./blobs/ ./gateway/ ./index/ ./internal/... ./ring/

sim:             ## a long run of the seeded cluster simulation
	$(GO) test ./index/ -run TestSimulation -sim.schedules=5000 -timeout 30m -v

fuzz:            ## each fuzz target for FUZZTIME (default 60s)
	$(GO) test ./auth/ -run XXX -fuzz FuzzChunkedReader -fuzztime $${FUZZTIME:-60s}
	$(GO) test ./auth/ -run XXX -fuzz FuzzVerify -fuzztime $${FUZZTIME:-60s}
	$(GO) test ./gateway/ -run XXX -fuzz FuzzParseRange -fuzztime $${FUZZTIME:-60s}
	$(GO) test ./gateway/ -run XXX -fuzz FuzzParseXML -fuzztime $${FUZZTIME:-60s}
	$(GO) test ./index/ -run XXX -fuzz FuzzDecodeObject -fuzztime $${FUZZTIME:-60s}
	$(GO) test ./index/ -run XXX -fuzz FuzzDecodeRequest -fuzztime $${FUZZTIME:-60s}

lint:            ## formatting and vet
	test -z "$$(gofmt -l .)"
	$(GO) vet ./...

bench:           ## Go benchmarks of the hot paths, then the ringstore bench matrix
	$(GO) test ./... -run XXX -bench . -benchmem
	bench/run.sh

integration:     ## end-to-end tests with the long soak and 1 GiB copy
	$(GO) test ./integration/ -ringstore.long -timeout 30m

run:             ## the embedded default
	$(GO) run ./cmd/ringstore server
