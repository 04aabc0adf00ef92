// certs_test.go checks the certificates derived from the cluster secret:
// every holder of a secret derives the same CA and nobody else does; a
// peer's identity is what its verified leaf names, and a leaf from another
// CA, without a role or signed by no one is refused. FuzzVerifyPeer feeds
// arbitrary bytes to the verification of a peer's certificate: nothing
// panics, and whatever is accepted parses as a certificate signed by the
// cluster CA.
package rpc

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
)

func mustCreds(t testing.TB, secret string, role Role, id string) *Credentials {
	t.Helper()
	c, err := NewCredentials([]byte(testSecret(secret)), role, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCredentialsDerivation(t *testing.T) {
	a, b := mustCreds(t, "k", RoleNode, "n1"), mustCreds(t, "k", RoleAdmin, "admin")
	if !bytes.Equal(a.ca.Raw, b.ca.Raw) {
		t.Fatal("two holders of one secret derived different CAs")
	}
	if bytes.Equal(a.leaf.Certificate[0], mustCreds(t, "k", RoleNode, "n1").leaf.Certificate[0]) {
		t.Fatal("two processes minted the same leaf")
	}
	other := mustCreds(t, "other", RoleNode, "n1")
	if bytes.Equal(a.ca.Raw, other.ca.Raw) {
		t.Fatal("two secrets derived the same CA")
	}
	for _, c := range []struct {
		leaf []byte
		want Peer
	}{
		{a.leaf.Certificate[0], Peer{Role: RoleNode, ID: "n1"}},
		{b.leaf.Certificate[0], Peer{Role: RoleAdmin, ID: "admin"}},
	} {
		if got, err := other.verify([][]byte{c.leaf}); err == nil {
			t.Errorf("a leaf for %+v verified under another secret as %+v", c.want, got)
		}
		if got, err := a.verify([][]byte{c.leaf}); err != nil || got != c.want {
			t.Errorf("verify = %+v, %v; want %+v", got, err, c.want)
		}
	}
	// A leaf the cluster CA signed but that names no role, and a chain
	// that tries to pass a leaf along with the CA.
	caKey, err := caKey([]byte(testSecret("k")))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	noRole, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "n9"},
		NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, a.ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.verify([][]byte{noRole}); err == nil {
		t.Errorf("a leaf without a role verified as %+v", p)
	}
	if p, err := a.verify([][]byte{a.leaf.Certificate[0], a.ca.Raw}); err == nil {
		t.Errorf("a chain of two verified as %+v", p)
	}
	if p, err := a.verify([][]byte{a.ca.Raw}); err == nil {
		t.Errorf("the CA itself verified as a peer: %+v", p)
	}
}

func FuzzVerifyPeer(f *testing.F) {
	creds := mustCreds(f, "k", RoleNode, "n1")
	f.Add(creds.leaf.Certificate[0])
	f.Add(mustCreds(f, "k", RoleAdmin, "admin").leaf.Certificate[0])
	f.Add(mustCreds(f, "other", RoleNode, "n1").leaf.Certificate[0])
	f.Add(creds.ca.Raw)
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := creds.verify([][]byte{der})
		if err != nil {
			return
		}
		leaf, perr := x509.ParseCertificate(der)
		if perr != nil {
			t.Fatalf("accepted as %+v bytes that do not parse: %v", p, perr)
		}
		if err := leaf.CheckSignatureFrom(creds.ca); err != nil {
			t.Fatalf("accepted as %+v a certificate the cluster CA did not sign: %v", p, err)
		}
		if p.ID == "" || (p.Role != RoleNode && p.Role != RoleAdmin) {
			t.Fatalf("accepted with identity %+v", p)
		}
	})
}
