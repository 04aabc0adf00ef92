// Package ring places data on nodes: the pure placement maths, with no
// networking and no notion of liveness (which nodes are up is the
// membership layer's business; the ring only says where data belongs).
//
// The key space is cut into Q equal partitions, Q a power of two fixed
// when the cluster is created (Dynamo's "strategy 3"). A placement key's
// partition is the top log2(Q) bits of its xxhash64 (Ring.PartitionOf); a
// blob, whose ID is already a SHA-256 digest, uses the digest's top bits
// (Ring.PartitionOfDigest).
//
// The Layout is what the cluster agrees on: the members (ID, zone, weight,
// an address the ring carries but never reads), Q, the replication factor
// N, and a Version bumped by every change. Assign turns a layout, and the
// previous Assignment, into the new Assignment: for every partition its
// preference list of owners, N distinct nodes (all nodes if fewer) spread
// over as many zones as possible, each node holding a share of the
// partition-replicas that follows its weight, and as few replicas as
// possible moving from the previous assignment. Owners(p)[0] is the
// partition's first owner. See assign.go for the algorithm and its
// guarantees.
//
// Because Assign depends on the previous assignment, the assignment is
// state to persist and gossip next to the layout (both have canonical
// binary encodings, and Assignment.Hash lets nodes compare tables). Any
// node recomputing Assign from the same previous assignment and layout
// gets the identical table.
//
// A Ring is an immutable snapshot of a layout and its assignment for the
// request path: lookups are O(1) table reads that do not allocate, and
// Fallbacks gives the deterministic list of nodes to use when owners are
// unreachable (sloppy quorum).
//
// ring imports nothing else of ringstore.
package ring
