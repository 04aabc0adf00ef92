// ingest_test.go checks the chunk writer against the rule the store's
// integrity rests on: no buffer is reused while any write of it, local or
// to another node, acknowledged or still running, can read it.
//
// Method: the chunk store has three owners, this node and two fake nodes
// that take a random, sometimes long, time before they read a request and
// check every chunk they receive against its ID. Concurrent uploads of
// multi-chunk bodies share the gateway's buffer pool, so a buffer handed
// back while a slow write still reads it is refilled by another upload.
// Every chunk stored here and there must hash to its name, and every
// object read back must be the bytes written. Under -race, a late read of
// a reused buffer is also a reported race.
package gateway

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ringstore/ringstore/blobs"
)

type threeOwners struct{}

func (threeOwners) ChunkOwners(blobs.ID) []string      { return []string{"n1", "n2", "n3"} }
func (threeOwners) ChunkWriteSets(blobs.ID) [][]string { return [][]string{{"n1", "n2", "n3"}} }
func (threeOwners) ChunkFallbacks(blobs.ID) []string   { return nil }

// slowNodes stand in for the other owners: each blob.put waits a random
// time (most short, some long) and then checks the chunk against its ID.
type slowNodes struct {
	mu       sync.Mutex
	rng      *rand.Rand
	received int
	bad      int
	inflight sync.WaitGroup
}

func (n *slowNodes) Call(ctx context.Context, to, service string, body []byte) ([]byte, error) {
	if service != "blob.put" {
		return nil, fmt.Errorf("unexpected service %s", service)
	}
	n.inflight.Add(1)
	defer n.inflight.Done()
	n.mu.Lock()
	d := time.Duration(n.rng.IntN(200)) * time.Microsecond
	if n.rng.IntN(8) == 0 {
		d = time.Duration(5+n.rng.IntN(20)) * time.Millisecond
	}
	n.mu.Unlock()
	time.Sleep(d)
	owner := int(body[0])
	var id blobs.ID
	copy(id[:], body[1+owner:])
	data := body[1+owner+len(id):]
	ok := blobs.Sum(data) == id
	n.mu.Lock()
	n.received++
	if !ok {
		n.bad++
	}
	n.mu.Unlock()
	if !ok {
		return nil, blobs.ErrCorrupt
	}
	return nil, nil
}

func TestChunkWriterNeverReusesABufferInUse(t *testing.T) {
	nodes := &slowNodes{rng: rand.New(rand.NewPCG(1, 2))}
	var chunks *blobs.Replicated
	ts := newTestServer(t, func(c *Config) {
		chunks = blobs.NewReplicated(blobs.ReplicatedConfig{
			Self: "n1", Local: c.Chunks.(*blobs.Replicated).Local(), RPC: nodes, W: 2,
			Placement: func() blobs.Placement { return threeOwners{} },
		}, nil)
		c.Chunks = chunks
	})
	ts.must(200, "PUT", "/bkt", nil)

	const uploads, perUpload = 8, 6
	bodies := make([][]byte, uploads*perUpload)
	var wg sync.WaitGroup
	for u := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(u), 7))
			for i := range perUpload {
				// 3 to 12 chunks of 64 KiB, and a tail.
				body := make([]byte, (3+r.IntN(10))<<16+r.IntN(1000))
				for j := range body {
					body[j] = byte(r.Uint32())
				}
				bodies[u*perUpload+i] = body
				if rr := ts.do("PUT", fmt.Sprintf("/bkt/u%d-%d", u, i), body); rr.Code != 200 {
					t.Errorf("PUT: %d %s", rr.Code, rr.Body)
				}
			}
		}()
	}
	wg.Wait()
	nodes.inflight.Wait()

	for u := range uploads {
		for i := range perUpload {
			key := fmt.Sprintf("u%d-%d", u, i)
			func() {
				// A chunk that fails verification after the headers went
				// out cuts the response (http.ErrAbortHandler).
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("GET %s: cut short (%v)", key, p)
					}
				}()
				rr := ts.do("GET", "/bkt/"+key, nil)
				if rr.Code != 200 || !bytes.Equal(rr.Body.Bytes(), bodies[u*perUpload+i]) {
					t.Errorf("GET %s: %d, right bytes %v", key, rr.Code, bytes.Equal(rr.Body.Bytes(), bodies[u*perUpload+i]))
				}
			}()
		}
	}
	local := 0
	if err := ts.blobs.Walk(func(id blobs.ID, _ int64, _ time.Time) bool {
		local++
		if _, err := ts.blobs.GetVerified(id, nil); err != nil {
			t.Errorf("local chunk %s: %v", id, err)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	nodes.mu.Lock()
	defer nodes.mu.Unlock()
	if nodes.bad > 0 {
		t.Errorf("%d of %d chunks sent to other nodes did not hash to their IDs", nodes.bad, nodes.received)
	}
	if local == 0 || nodes.received == 0 {
		t.Fatalf("nothing was stored: %d local chunks, %d sent", local, nodes.received)
	}
}
