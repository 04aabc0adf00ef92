package rpc

import (
	"fmt"
	"math"
	"strings"
)

// MinSecretBits is the least entropy a cluster secret may carry: the
// secret is the cluster CA's key material and keys gossip, so guessing it
// must cost as much as breaking the ciphers it keys.
const MinSecretBits = 256

// HowToMakeSecret tells an operator how to make a good secret.
const HowToMakeSecret = "make one with `openssl rand -base64 32` or `head -c 32 /dev/urandom | base64`"

// SecretBits bounds the entropy secret can carry from above, by its
// length and the smallest usual alphabet holding all its characters: a
// random string cannot carry more, and a chosen one carries less. 32
// random bytes written in hex (64 characters) or base64 (43 or 44) reach
// 256 bits; so do 32 raw bytes.
func SecretBits(secret []byte) float64 {
	if len(secret) == 0 {
		return 0
	}
	body := strings.TrimRight(string(secret), "=")
	alphabet := 256.0
	switch {
	case only(body, "0123456789"):
		alphabet = 10
	case only(body, "0123456789abcdef"), only(body, "0123456789ABCDEF"):
		alphabet = 16
	case only(body, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), only(body, "abcdefghijklmnopqrstuvwxyz234567"):
		alphabet = 32
	case only(body, base64Chars+"+/"), only(body, base64Chars+"-_"):
		alphabet = 64
	case printable(string(secret)):
		alphabet = 95
	default:
		body = string(secret)
	}
	return float64(len(body)) * math.Log2(alphabet)
}

const base64Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func only(s, chars string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(chars, s[i]) < 0 {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// CheckSecret refuses a cluster secret that cannot carry MinSecretBits,
// saying how to make one that does.
func CheckSecret(secret []byte) error {
	if len(secret) == 0 {
		return fmt.Errorf("a cluster needs a secret (--cluster-secret / RINGSTORE_CLUSTER_SECRET) of 32 random bytes or more: %s", HowToMakeSecret)
	}
	if bits := SecretBits(secret); bits < MinSecretBits {
		return fmt.Errorf("the cluster secret is too weak: its %d characters carry at most %.0f bits, and it needs %d (32 random bytes): %s", len(secret), bits, MinSecretBits, HowToMakeSecret)
	}
	return nil
}
