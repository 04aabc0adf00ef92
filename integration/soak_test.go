// soak_test.go: a randomized mixed workload checked against a model, with
// restarts.
//
// Goal: under concurrent puts (inline and multi-chunk sizes), overwrites,
// gets, ranged gets, deletes and listings, every read returns exactly what
// the model says the last acknowledged write left, and so does the whole
// store after a SIGKILL restart and after a graceful restart.
//
// Method: each worker owns its own key range (so the model is exact) and
// runs random operations through raw signed requests. Phases of operations
// alternate with a restart (kill or graceful) and a full verification. The
// default is a short form (a few seconds); -ringstore.long runs many more
// phases and operations with larger objects (about five minutes: run it with
// go test -run TestSoak -ringstore.long -timeout 30m ./integration/).
package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

type soakModel struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func TestSoak(t *testing.T) {
	t.Parallel()
	workers, phases, opsPerPhase, keysPerWorker := 4, 3, 150, 40
	sizes := []int{0, 1, 100, 4 << 10, 64 << 10, 64<<10 + 1, 300 << 10, 1 << 20, 1<<20 + 1, 2<<20 + 12345}
	if *flagLong {
		workers, phases, opsPerPhase, keysPerWorker = 8, 8, 1000, 200
		sizes = append(sizes, 5<<20+7, 9<<20)
	}
	srv := startServer(t, ServerOptions{LogLevel: "info"})
	b := bucketName(t)
	srv.mustCreateBucket(t, b)
	model := &soakModel{objs: map[string][]byte{}}
	// Operations stop at the deadline (20 minutes, or a minute before the
	// go test -timeout), leaving time for the last verification.
	deadline := time.Now().Add(20 * time.Minute)
	if d, ok := t.Deadline(); ok && d.Add(-time.Minute).Before(deadline) {
		deadline = d.Add(-time.Minute)
	}

	for phase := 0; phase < phases; phase++ {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(phase), uint64(w)))
				for i := 0; i < opsPerPhase && !t.Failed() && time.Now().Before(deadline); i++ {
					soakOp(t, srv, b, model, rng, fmt.Sprintf("w%d/", w), keysPerWorker, sizes)
				}
			}(w)
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if phase%2 == 0 {
			srv.Kill()
		}
		srv.Restart()
		rawClient.Transport.(*http.Transport).CloseIdleConnections()
		soakVerify(t, srv, b, model)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d phases of %d workers x %d operations; %d objects at the end", phases, workers, opsPerPhase, len(model.objs))
}

// soakOp runs one random operation on a key of the worker's range.
func soakOp(t *testing.T, srv *Server, b string, m *soakModel, rng *rand.Rand, prefix string, nkeys int, sizes []int) {
	key := fmt.Sprintf("%sk%03d", prefix, rng.IntN(nkeys))
	m.mu.Lock()
	cur, exists := m.objs[key]
	m.mu.Unlock()
	switch p := rng.IntN(100); {
	case p < 45: // put
		data := randomBytes(sizes[rng.IntN(len(sizes))])
		r := srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: key, Body: data})
		if r.Status != 200 {
			t.Errorf("soak PUT %s (%d bytes): %s", key, len(data), r)
			return
		}
		m.mu.Lock()
		m.objs[key] = data
		m.mu.Unlock()
	case p < 75: // get
		r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: key})
		switch {
		case exists && (r.Status != 200 || !bytes.Equal(r.Body, cur)):
			t.Errorf("soak GET %s: status %d, %d bytes; want 200 and the %d bytes last written", key, r.Status, len(r.Body), len(cur))
		case !exists && r.Status != 404:
			t.Errorf("soak GET %s (deleted or never written): %s, want 404", key, r)
		}
	case p < 85: // ranged get
		if !exists || len(cur) == 0 {
			return
		}
		from := rng.IntN(len(cur))
		to := from + rng.IntN(len(cur)-from)
		r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: key, Header: http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", from, to)}}})
		if r.Status != 206 || !bytes.Equal(r.Body, cur[from:to+1]) {
			t.Errorf("soak GET %s Range bytes=%d-%d of %d: status %d, %d bytes", key, from, to, len(cur), r.Status, len(r.Body))
		}
	case p < 95: // delete
		r := srv.do(t, rawReq{Method: "DELETE", Bucket: b, Key: key})
		if r.Status != 204 {
			t.Errorf("soak DELETE %s: %s, want 204", key, r)
			return
		}
		m.mu.Lock()
		delete(m.objs, key)
		m.mu.Unlock()
	default: // list the worker's prefix
		got := srv.listKeys(t, b, prefix)
		m.mu.Lock()
		var want []string
		for k := range m.objs {
			if len(k) > len(prefix) && k[:len(prefix)] == prefix {
				want = append(want, k)
			}
		}
		m.mu.Unlock()
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("soak list %s: %d keys, want %d", prefix, len(got), len(want))
		}
	}
}

// soakVerify checks the whole bucket against the model.
func soakVerify(t *testing.T, srv *Server, b string, m *soakModel) {
	t.Helper()
	var want []string
	for k := range m.objs {
		want = append(want, k)
	}
	slices.Sort(want)
	if got := srv.listKeys(t, b, ""); !slices.Equal(got, want) {
		t.Errorf("after restart the bucket lists %d keys, the model has %d", len(got), len(want))
	}
	for _, k := range want {
		r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: k})
		if r.Status != 200 || !bytes.Equal(r.Body, m.objs[k]) {
			t.Errorf("after restart GET %s: status %d, %d bytes, want the %d bytes last written", k, r.Status, len(r.Body), len(m.objs[k]))
		}
	}
}
