// store_bench_test.go: benchmarks of the local chunk store.
//
// Goal: know what storing and reading one 1 MiB chunk (the gateway's chunk
// size) costs on this disk, durable write and verified read included, so
// PUT and GET figures of large objects can be read against it.
//
// Method: the store lives in b.TempDir() on the real filesystem. PutChunk
// writes a new chunk every op (tmp file, write, fsync, rename, directory
// fsync) under a fresh synthetic id, so no op hits the "already present"
// path; that path (reading the file back and checking it, then chtimes)
// has its own case. The parallel case runs
// 16 writers (b.SetParallelism(8) on 2 cores), as 4 uploads with 4 chunks
// in flight each would. Get reads and SHA-256-verifies one of 64
// pre-written chunks (page cache warm, as for a hot object).
package blobs

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

const benchChunk = 1 << 20

func benchChunkData(seed uint64) []byte {
	b := make([]byte, benchChunk)
	r := rand.New(rand.NewPCG(seed, 9))
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// syntheticID names the n-th chunk of a run; synthetic makes a chunk of
// it without hashing, so the benchmark measures storing, not hashing.
func syntheticID(run, n uint64) ID {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], run)
	binary.BigEndian.PutUint64(buf[8:], n)
	return sha256.Sum256(buf[:])
}

func synthetic(id ID, data []byte) Chunk { return Chunk{id: id, sum: fastSum(data), data: data} }

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return s
}

var benchRun atomic.Uint64

func BenchmarkStorePutChunk(b *testing.B) {
	data := benchChunkData(1)
	b.Run("1MiB/serial", func(b *testing.B) {
		s := benchStore(b)
		run := benchRun.Add(1)
		b.ReportAllocs()
		b.SetBytes(benchChunk)
		n := uint64(0)
		for b.Loop() {
			n++
			if existed, err := s.PutChunk(synthetic(syntheticID(run, n), data)); err != nil || existed {
				b.Fatal(existed, err)
			}
		}
	})
	b.Run("1MiB/parallel16", func(b *testing.B) {
		s := benchStore(b)
		run := benchRun.Add(1)
		var n atomic.Uint64
		b.ReportAllocs()
		b.SetBytes(benchChunk)
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if existed, err := s.PutChunk(synthetic(syntheticID(run, n.Add(1)), data)); err != nil || existed {
					b.Error(existed, err)
					return
				}
			}
		})
	})
	b.Run("1MiB/existing", func(b *testing.B) {
		s := benchStore(b)
		id := Sum(data)
		if _, err := s.PutChunk(synthetic(id, data)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(benchChunk)
		for b.Loop() {
			if existed, err := s.PutChunk(synthetic(id, data)); err != nil || !existed {
				b.Fatal(existed, err)
			}
		}
	})
}

func BenchmarkStoreGet(b *testing.B) {
	s := benchStore(b)
	ids := make([]ID, 64)
	for i := range ids {
		id, _, err := s.Put(benchChunkData(uint64(i)))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	b.Run("1MiB/serial", func(b *testing.B) {
		buf := make([]byte, benchChunk)
		r := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		b.SetBytes(benchChunk)
		for b.Loop() {
			if _, err := s.Get(ids[r.IntN(len(ids))], buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1MiB/parallel", func(b *testing.B) {
		var seed atomic.Uint64
		b.ReportAllocs()
		b.SetBytes(benchChunk)
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, benchChunk)
			r := rand.New(rand.NewPCG(seed.Add(1), 2))
			for pb.Next() {
				if _, err := s.Get(ids[r.IntN(len(ids))], buf); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// read-only: the same file read without verification, to split Get
	// between I/O and SHA-256.
	b.Run("1MiB/sha256-only", func(b *testing.B) {
		data := benchChunkData(1)
		b.ReportAllocs()
		b.SetBytes(benchChunk)
		for b.Loop() {
			_ = Sum(data)
		}
	})
}
