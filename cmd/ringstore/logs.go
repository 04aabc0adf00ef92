package main

import (
	"log"
	"log/slog"
	"strings"

	"github.com/ringstore/ringstore/internal/lograte"
)

// httpErrorLog is the ErrorLog of the node's HTTP servers. A failed TLS
// handshake is worth an operator's notice (a client that does not trust
// the certificate, or speaks plain HTTP to the HTTPS port), except a
// connection closed before it began one, which is what port scanners and
// TCP health checks do; the rest of net/http's lines stay at debug. Each
// kind of line goes through a rate limit: the peer chooses how many
// connections fail.
func httpErrorLog(l *slog.Logger) *log.Logger {
	return log.New(lograte.NewWriter(l.With("component", "http"), httpErrorLevel), "", 0)
}

func httpErrorLevel(line string) slog.Level {
	if strings.HasPrefix(line, "http: TLS handshake error") && !strings.HasSuffix(line, ": EOF") {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
