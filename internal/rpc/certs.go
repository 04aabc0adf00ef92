package rpc

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Role is what a certificate's holder may do: a node serves and calls
// every service but the admin ones; an admin tool calls only those.
type Role string

const (
	RoleNode  Role = "node"
	RoleAdmin Role = "admin"
)

// AdminServicePrefix starts the name of every service an admin tool may
// call, and no other.
const AdminServicePrefix = "admin."

// Peer is the verified identity at the other end of a connection, read
// from its certificate.
type Peer struct {
	Role Role
	ID   string
}

// alpn names the protocol inside TLS, so that a future frame format can
// be told apart in the handshake rather than by a failing frame.
const alpn = "ringstore-rpc/1"

// Validity of every certificate. Expiry would protect nothing here: anyone
// holding the secret mints certificates at will, and only a new secret
// (a new CA) shuts a holder out. A fixed span keeps clocks out of the
// handshake: nodes with skewed clocks still talk.
var (
	notBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Credentials are one process's TLS identity in the cluster: the CA that
// every holder of the cluster secret derives identically, and a leaf
// certificate of its own, signed by that CA, naming its role and id.
type Credentials struct {
	self Peer
	ca   *x509.Certificate
	pool *x509.CertPool
	leaf tls.Certificate
}

// caKey derives the cluster CA's key from the secret: every holder of
// the secret gets the same key, nobody else can.
func caKey(secret []byte) (ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, secret, nil, "ringstore cluster ca", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// NewCredentials derives the cluster CA from secret and mints a leaf for
// role and id with a fresh key. A secret that fails CheckSecret is refused.
func NewCredentials(secret []byte, role Role, id string) (*Credentials, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, err
	}
	if role != RoleNode && role != RoleAdmin {
		return nil, fmt.Errorf("rpc: unknown role %q", role)
	}
	if id == "" || len(id) > 255 {
		return nil, fmt.Errorf("rpc: identity %q: want 1 to 255 bytes", id)
	}
	caPriv, err := caKey(secret)
	if err != nil {
		return nil, err
	}
	// The CA certificate is the same bytes on every node: a fixed template
	// and a deterministic signature scheme.
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"ringstore"}, CommonName: "ringstore cluster CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caPriv.Public(), caPriv)
	if err != nil {
		return nil, fmt.Errorf("rpc: cluster CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("rpc: cluster CA: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"ringstore"}, OrganizationalUnit: []string{string(role)}, CommonName: id},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca, pub, caPriv)
	if err != nil {
		return nil, fmt.Errorf("rpc: leaf certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &Credentials{
		self: Peer{Role: role, ID: id},
		ca:   ca,
		pool: pool,
		leaf: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: priv},
	}, nil
}

// Self is the identity these credentials present.
func (c *Credentials) Self() Peer { return c.self }

// errForeignCert is the verification failure of a certificate that this
// cluster's CA did not sign: the peer holds another secret, or none.
var errForeignCert = errors.New("certificate not issued from this cluster's secret")

// verify checks a peer's certificate chain (its leaf alone) against the
// cluster CA and returns the identity it names.
func (c *Credentials) verify(rawCerts [][]byte) (Peer, error) {
	if len(rawCerts) != 1 {
		return Peer{}, fmt.Errorf("rpc: peer sent %d certificates, want 1", len(rawCerts))
	}
	leaf, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return Peer{}, fmt.Errorf("rpc: peer certificate: %w", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       c.pool,
		CurrentTime: notBefore.Add(time.Hour),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return Peer{}, fmt.Errorf("rpc: %w: %v", errForeignCert, err)
	}
	return peerOf(leaf)
}

// peerOf reads the identity a verified leaf names.
func peerOf(leaf *x509.Certificate) (Peer, error) {
	ou := leaf.Subject.OrganizationalUnit
	if len(ou) != 1 || (Role(ou[0]) != RoleNode && Role(ou[0]) != RoleAdmin) {
		return Peer{}, fmt.Errorf("rpc: peer certificate names no role (%q)", ou)
	}
	id := leaf.Subject.CommonName
	if id == "" || len(id) > 255 {
		return Peer{}, fmt.Errorf("rpc: peer certificate names no identity (%q)", id)
	}
	return Peer{Role: Role(ou[0]), ID: id}, nil
}

// baseConfig is the TLS configuration both ends share. TLS 1.3 only: every
// connection gets fresh keys from an ephemeral key exchange, so a
// recorded connection cannot be replayed, and there is no 0-RTT data.
func (c *Credentials) baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.leaf},
		NextProtos:   []string{alpn},
		// Resumption would let a connection skip the certificates, and the
		// connections are long-lived: a full handshake each time is cheap.
		SessionTicketsDisabled: true,
		// Full-size records from the first byte: connections carry
		// megabyte chunks, not web pages that need a fast first paint.
		DynamicRecordSizingDisabled: true,
	}
}

// serverConfig accepts any peer holding a certificate from the cluster
// CA; accepted calls the identity found.
func (c *Credentials) serverConfig(accepted func(Peer)) *tls.Config {
	cfg := c.baseConfig()
	// The chain is checked by verify, against the cluster CA alone.
	cfg.ClientAuth = tls.RequireAnyClientCert
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if cs.NegotiatedProtocol != alpn {
			return fmt.Errorf("rpc: peer speaks %q, not %q", cs.NegotiatedProtocol, alpn)
		}
		p, err := c.verify(rawChain(cs))
		if err != nil {
			return err
		}
		accepted(p)
		return nil
	}
	return cfg
}

// clientConfig accepts only a node whose certificate is from the cluster
// CA and, unless want is empty, names want.
func (c *Credentials) clientConfig(want string, accepted func(Peer)) *tls.Config {
	cfg := c.baseConfig()
	// Host names mean nothing here: the peer is checked by verify against
	// the cluster CA and by the node id its certificate names.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if cs.NegotiatedProtocol != alpn {
			return fmt.Errorf("rpc: peer speaks %q, not %q", cs.NegotiatedProtocol, alpn)
		}
		p, err := c.verify(rawChain(cs))
		if err != nil {
			return err
		}
		if p.Role != RoleNode {
			return fmt.Errorf("rpc: peer is %s %q, not a node", p.Role, p.ID)
		}
		if want != "" && p.ID != want {
			return fmt.Errorf("rpc: %w: reached node %q", errWrongNode, p.ID)
		}
		accepted(p)
		return nil
	}
	return cfg
}

// errWrongNode means a node's address now answers as another node.
var errWrongNode = errors.New("not the node called")

func rawChain(cs tls.ConnectionState) [][]byte {
	out := make([][]byte, len(cs.PeerCertificates))
	for i, c := range cs.PeerCertificates {
		out[i] = c.Raw
	}
	return out
}
