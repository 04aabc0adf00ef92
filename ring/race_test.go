//go:build race

// Goal: keep `go test -race` quick. Method: the race detector slows the
// flow solver ~10x, and the random walks exercise no concurrency, so they
// run fewer seeds under it.

package ring

func init() { raceEnabled = true }
