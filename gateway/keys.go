package gateway

import (
	"context"
	"crypto/subtle"
	"sync"
	"time"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/index"
)

// KeyLookup resolves access keys for package auth: the root key from the
// node's configuration, then the access-key records of the index. Index
// lookups are cached for ttl (a revoked key stops working within it, on
// every node); unknown ids are cached for a shorter time so a flood of
// bad signatures does not turn into quorum reads.
func KeyLookup(ix *index.Index, rootID, rootSecret string, ttl time.Duration) auth.KeyLookup {
	c := &keyCache{ix: ix, ttl: ttl, m: map[string]keyEntry{}}
	return func(id string) (string, bool) {
		if subtle.ConstantTimeCompare([]byte(id), []byte(rootID)) == 1 {
			return rootSecret, true
		}
		return c.lookup(id)
	}
}

type keyCache struct {
	ix  *index.Index
	ttl time.Duration

	mu sync.Mutex // guards m
	m  map[string]keyEntry
}

type keyEntry struct {
	secret string
	ok     bool
	until  time.Time
}

const keyCacheMax = 10000

func (c *keyCache) lookup(id string) (string, bool) {
	now := time.Now()
	c.mu.Lock()
	e, hit := c.m[id]
	c.mu.Unlock()
	if hit && now.Before(e.until) {
		return e.secret, e.ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k, err := c.ix.GetAccessKey(ctx, id)
	if err != nil {
		// Fail closed, and do not cache an outage.
		return "", false
	}
	e = keyEntry{until: now.Add(c.ttl)}
	if k.Live() {
		e.secret, e.ok = k.Secret, true
	} else {
		e.until = now.Add(c.ttl / 10)
	}
	c.mu.Lock()
	if len(c.m) >= keyCacheMax {
		c.m = map[string]keyEntry{}
	}
	c.m[id] = e
	c.mu.Unlock()
	return e.secret, e.ok
}
