// Package bench is the engine of `ringstore bench`, a load generator for
// S3 endpoints modelled on minio's warp: PUT, GET, STAT, LIST, DELETE and
// MIXED workloads against a bucket it prepares and cleans up itself.
//
// The client is deliberately lean (net/http with a tuned transport, SigV4
// from package auth with UNSIGNED-PAYLOAD bodies, byte-scanned XML) because
// on a small machine the load generator shares CPUs with the server and must
// not be what limits the figures.
//
// Object content is a deterministic PRNG stream derived from (seed, key,
// size), so a reader can regenerate what a writer sent and compare: sampled
// reads are checked byte for byte and every mismatch is an error.
//
// With Baseline set, a run also measures the machine's own limits (hashing,
// pebble's synced group commit, a bare net/http server driven by the same
// client) and reports each result as a ratio to the relevant limit.
package bench
