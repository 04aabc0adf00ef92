// Package index is ringstore's replicated metadata index: bucket, object
// version, extent and blob-reference records, each a state-based CRDT, kept
// in a local pebble store on every owner and written and read through
// quorums.
//
// Vocabulary, used with exactly these meanings throughout ringstore:
//
//   - partition: one of the Q equal slices of the key space (see package
//     ring). Every record has a placement key whose hash picks its partition.
//   - layout: the ring members with their zones and weights, and Q.
//   - owner: one of the N nodes the layout assigns to a partition; the
//     ordered owners of a partition are its preference list.
//   - fallback: a node outside the preference list that accepts a write for
//     an unreachable owner, keeping a hint.
//   - hint: a record held by a fallback for an owner, handed off when the
//     owner is reachable again.
//   - coordinator: the node that runs a client's quorum read or write.
//   - replica: an owner's local copy of a record.
//   - tombstone: a record state that says "deleted" and outranks the states
//     it replaces, so a delete cannot be undone by a stale replica.
//   - version: an S3 object version, and nothing else.
//
// Every record type merges with a function that is commutative, associative
// and idempotent, so replicas that have seen the same records hold
// byte-identical state, whatever order the records arrived in.
package index
