// Package workers runs short tasks on reused goroutines.
//
// A task that calls deep (a pebble read or commit goes some 60 frames
// down) grows the stack of a fresh goroutine several times, copying it
// each time: in a 3-node cluster's PUT profile that was 4.5% of the
// servers' CPU. A goroutine that stays around keeps its grown stack, so
// only its first task pays.
package workers

import (
	"sync/atomic"
	"time"
)

// Pool hands tasks to idle workers, starting a new one when none is idle.
// The number of workers is not bounded: callers bound their own work, as
// they bounded the goroutines they started before. The zero value is not
// usable; make one with New.
type Pool struct {
	work    chan func()
	idle    time.Duration
	started atomic.Int64
}

// New returns a pool whose workers exit after idle without a task.
func New(idle time.Duration) *Pool {
	return &Pool{work: make(chan func()), idle: idle}
}

// Go runs f on a worker.
func (p *Pool) Go(f func()) {
	select {
	case p.work <- f:
	default:
		p.started.Add(1)
		go p.worker(f)
	}
}

// Started returns how many workers the pool has started.
func (p *Pool) Started() int64 { return p.started.Load() }

func (p *Pool) worker(f func()) {
	f()
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		select {
		case f := <-p.work:
			f()
			t.Reset(p.idle)
		case <-t.C:
			return
		}
	}
}
