// secret_test.go checks the cluster secret's strength estimate: what the
// README tells operators to run passes, shorter or narrower secrets fail
// and say how to make a good one, and certificates are refused for them.
package rpc

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestCheckSecret(t *testing.T) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	for _, good := range []string{
		base64.StdEncoding.EncodeToString(raw),    // openssl rand -base64 32
		base64.RawURLEncoding.EncodeToString(raw), // 43 characters
		hex.EncodeToString(raw),                   // openssl rand -hex 32
		base32.StdEncoding.EncodeToString(raw),
		string(raw) + "\x00",
		`k3"Vq~8!Zp]x0&Lr@c5;Wm^e2{Tg7?Ha4|Jd9<Nb`, // 40 printable
	} {
		if err := CheckSecret([]byte(good)); err != nil {
			t.Errorf("CheckSecret(%q) = %v", good, err)
		}
	}
	for _, weak := range []string{
		"",
		"integration-cluster-secret",
		base64.StdEncoding.EncodeToString(raw[:24]), // 32 characters, 192 bits
		hex.EncodeToString(raw[:31]),
		strings.Repeat("7", 70),              // digits: 3.3 bits each
		`k3"Vq~8!Zp]x0&Lr@c5;Wm^e2{Tg7?Ha4|`, // 34 printable
	} {
		err := CheckSecret([]byte(weak))
		if err == nil || !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Errorf("CheckSecret(%q) = %v; want a refusal saying how to make one", weak, err)
		}
		if _, err := NewCredentials([]byte(weak), RoleNode, "n1"); err == nil {
			t.Errorf("credentials minted from %q", weak)
		}
	}
}
