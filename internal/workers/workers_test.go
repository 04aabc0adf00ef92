package workers

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every task runs exactly once, concurrently when submitted together.
func TestPoolRunsEveryTask(t *testing.T) {
	p := New(time.Second)
	var n atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 10000; i++ {
		wg.Add(1)
		p.Go(func() { n.Add(1); wg.Done() })
	}
	wg.Wait()
	if n.Load() != 10000 {
		t.Fatalf("%d tasks ran, want 10000", n.Load())
	}
	// Tasks that block each other need a worker each: the pool never
	// queues a task behind a busy worker.
	release := make(chan struct{})
	var started sync.WaitGroup
	for i := 0; i < 50; i++ {
		started.Add(1)
		p.Go(func() { started.Done(); <-release })
	}
	started.Wait()
	close(release)
}

// Idle workers exit, so a burst leaves no goroutines behind.
func TestPoolWorkersExitWhenIdle(t *testing.T) {
	before := runtime.NumGoroutine()
	p := New(20 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		p.Go(func() { time.Sleep(time.Millisecond); wg.Done() })
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkDeepTask is a task that needs a 64 KiB stack, run on a fresh
// goroutine and on the pool.
func BenchmarkDeepTask(b *testing.B) {
	deep := func() {
		var buf [64 << 10]byte
		runtime.KeepAlive(&buf)
	}
	b.Run("goroutine", func(b *testing.B) {
		done := make(chan struct{})
		for b.Loop() {
			go func() { deep(); done <- struct{}{} }()
			<-done
		}
	})
	b.Run("pool", func(b *testing.B) {
		p := New(time.Second)
		done := make(chan struct{})
		for b.Loop() {
			p.Go(func() { deep(); done <- struct{}{} })
			<-done
		}
	})
}
