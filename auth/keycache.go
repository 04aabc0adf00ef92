package auth

import (
	"sync"
	"time"
)

// keyCache remembers derived signing keys by (secret, day, region,
// service). The secret is part of the key so a rotated secret never
// matches an old entry; entries are dropped wholesale when the cache is
// full, which with daily keys and few credentials rarely happens.
type keyCache struct {
	mu sync.Mutex // guards m
	m  map[keyCacheKey][]byte
}

type keyCacheKey struct {
	secret, day, region, service string
}

// keyCacheMax bounds the cache.
const keyCacheMax = 4096

func (v *Verifier) signingKey(secret string, t time.Time, region, service string) []byte {
	k := keyCacheKey{secret: secret, day: t.UTC().Format(scopeDateFormat), region: region, service: service}
	c := &v.keys
	c.mu.Lock()
	key, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return key
	}
	key = SigningKey(secret, t, region, service)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= keyCacheMax {
		c.m = map[keyCacheKey][]byte{}
	}
	c.m[k] = key
	c.mu.Unlock()
	return key
}
