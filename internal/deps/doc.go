// Package deps holds the test that keeps ringstore's dependency graph
// pointing one way: cmd -> gateway -> {auth, index, blobs} -> ring. It has
// no code of its own.
package deps
