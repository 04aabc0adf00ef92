// Package blobs stores object bytes as content-addressed chunks: each chunk
// is a file named by the SHA-256 of its bytes, written to a temporary file,
// fsynced, renamed into place and its directory fsynced, so a chunk file
// either exists whole or not at all. Every read verifies the bytes, by a
// checksum the file carries (fastSum) or against the name; scrub always
// against the name. A chunk that fails is moved aside, never served.
//
// blobs knows nothing of objects or S3; which chunks are still referenced
// is the index's business.
package blobs
