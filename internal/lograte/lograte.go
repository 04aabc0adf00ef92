// Package lograte bounds how fast a repetitive source of log lines can
// fill the log: a flood of garbage gossip packets or of failed TLS
// handshakes would otherwise write one line each, burying everything else
// and filling the disk at the rate an attacker chooses.
//
// Lines are sorted into kinds by their text with the variable part (the
// peer's address, a count, an error's detail) cut off. Each kind may write
// a burst of lines at once and then one more line per period; the lines
// beyond that are counted, and one line per period says how many of a
// kind were suppressed.
package lograte

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Defaults for NewWriter: 5 lines of a kind at once, then one line and one
// summary per 10 seconds.
const (
	DefaultBurst  = 5
	DefaultPeriod = 10 * time.Second
)

// maxKinds bounds the kinds with a bucket of their own: kinds come from
// the format strings of the code that logs, but a message whose variable
// part comes first would make a new kind of every line.
const maxKinds = 256

// otherKind takes the lines of new kinds while maxKinds are remembered.
const otherKind = "(other)"

// Limiter decides which lines of each kind are written. It is safe for
// concurrent use.
type Limiter struct {
	burst  float64
	period time.Duration
	// report is called, outside the lock, with the number of lines of a
	// kind suppressed, the highest level among them, and a sample.
	report func(kind string, suppressed int, level slog.Level, sample string)

	// Seams for tests.
	now       func() time.Time
	afterFunc func(time.Duration, func())

	mu    sync.Mutex
	kinds map[string]*bucket
}

type bucket struct {
	tokens     float64
	at         time.Time
	suppressed int
	level      slog.Level // the highest of the suppressed lines
	sample     string     // the first suppressed line
	reporting  bool       // a report of the suppressed lines is due
}

// NewLimiter returns a limiter that lets burst lines of a kind through at
// once and one more per period, and calls report once per period at most
// for each kind with lines suppressed.
func NewLimiter(burst int, period time.Duration, report func(kind string, suppressed int, level slog.Level, sample string)) *Limiter {
	return &Limiter{
		burst:     float64(max(burst, 1)),
		period:    period,
		report:    report,
		now:       time.Now,
		afterFunc: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		kinds:     map[string]*bucket{},
	}
}

// Allow reports whether a line of kind, at level, may be written now. A
// line refused is counted for the kind's next report.
func (l *Limiter) Allow(kind string, level slog.Level, line string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.kinds[kind]
	if b == nil {
		if len(l.kinds) >= maxKinds {
			l.forgetIdle(now)
		}
		if len(l.kinds) >= maxKinds {
			kind = otherKind
			b = l.kinds[kind]
		}
		if b == nil {
			b = &bucket{tokens: l.burst, at: now}
			l.kinds[kind] = b
		}
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+float64(elapsed)/float64(l.period))
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	if b.suppressed == 0 || level > b.level {
		b.level = level
	}
	if b.suppressed == 0 {
		b.sample = line
	}
	b.suppressed++
	if !b.reporting {
		b.reporting = true
		l.afterFunc(l.period, func() { l.flush(kind) })
	}
	return false
}

// forgetIdle drops the kinds that could write a whole burst again and
// owe no report: remembering them changes nothing.
func (l *Limiter) forgetIdle(now time.Time) {
	for k, b := range l.kinds {
		full := b.tokens+float64(now.Sub(b.at))/float64(l.period) >= l.burst
		if full && !b.reporting {
			delete(l.kinds, k)
		}
	}
}

func (l *Limiter) flush(kind string) {
	l.mu.Lock()
	b := l.kinds[kind]
	n, level, sample := b.suppressed, b.level, b.sample
	b.suppressed, b.reporting, b.sample = 0, false, ""
	l.mu.Unlock()
	if n > 0 {
		l.report(kind, n, level, sample)
	}
}

// Kind returns the kind of a log line: its text up to the first character
// that usually starts a variable part (a digit, a colon, a quote or a
// parenthesis), after any "[LEVEL] component: " or "component: " prefix,
// which is kept.
func Kind(line string) string {
	prefix := ""
	if i := strings.Index(line, ": "); i >= 0 && i < 32 && !strings.ContainsAny(line[:i], "0123456789'\"(") {
		prefix, line = line[:i+2], line[i+2:]
	}
	if i := strings.IndexAny(line, "0123456789:'\"(%"); i >= 0 {
		line = line[:i]
	}
	const maxLen = 80
	if len(line) > maxLen {
		line = line[:maxLen]
	}
	return prefix + line
}

// Writer takes the output of a log.Logger, such as memberlist's or
// net/http's ErrorLog, one line per Write, and passes each line on to a
// slog.Logger at the level Level gives it, each kind of line at most at
// the limiter's rate.
type Writer struct {
	logger *slog.Logger
	level  func(line string) slog.Level
	lim    *Limiter
}

// NewWriter returns a Writer to l with DefaultBurst and DefaultPeriod.
// Suppressed lines are summarised as "similar log lines suppressed" with
// their count, kind and first line, at the highest level among them.
func NewWriter(l *slog.Logger, level func(line string) slog.Level) *Writer {
	w := &Writer{logger: l, level: level}
	w.lim = NewLimiter(DefaultBurst, DefaultPeriod, func(kind string, n int, lv slog.Level, sample string) {
		l.Log(context.Background(), lv, "similar log lines suppressed", "count", n, "kind", kind, "first", sample,
			"period", DefaultPeriod)
	})
	return w
}

func (w *Writer) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n ")
	lv := w.level(line)
	if !w.logger.Enabled(context.Background(), lv) {
		return len(p), nil
	}
	if w.lim.Allow(Kind(line), lv, line) {
		w.logger.Log(context.Background(), lv, line)
	}
	return len(p), nil
}

var _ io.Writer = (*Writer)(nil)
