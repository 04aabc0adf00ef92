// Package integration holds ringstore's end-to-end tests; see
// harness_test.go for how they run. It has no non-test code besides this
// file.
package integration
