package ring

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Membership is a node's view of the cluster: the agreed layout (who owns
// what, changed only by an explicit act: a node joining, an admin removing
// one) and liveness (who is reachable now, from memberlist's failure
// detector). The two are kept apart on purpose: a crashed node stays in
// the layout and keeps its partitions, served meanwhile by the others with
// hints, until it returns (Dynamo §4.8).
//
// The layout spreads by gossip: memberlist's push-pull state exchange
// carries it, and a node that changes it also sends it to every member
// directly. Gossip is encrypted and authenticated with a key derived from
// the cluster secret, so a process without the secret can't join or listen.
type Membership struct {
	cfg MembershipConfig

	mu      sync.Mutex // guards the following fields
	ml      *memberlist.Memberlist
	current *ClusterLayout
	ring    *Ring
	alive   map[string]bool
	addrs   map[string]NodeMeta
}

// NodeMeta is what a node tells others about itself through gossip.
type NodeMeta struct {
	RPCAddr string
	S3Addr  string
	Zone    string
}

// MembershipConfig configures a Membership.
type MembershipConfig struct {
	Self NodeID
	// Member is this node as it should appear in the layout (zone, weight,
	// RPC address).
	Member Member
	// GossipAddr is the host:port memberlist listens on (TCP and UDP).
	GossipAddr string
	// AdvertiseAddr is the gossip address others should use; empty means
	// GossipAddr.
	AdvertiseAddr string
	// Join lists gossip addresses of nodes already in the cluster; empty
	// for the first node.
	Join []string
	// Secret keys gossip encryption; required unless GossipAddr is
	// loopback.
	Secret []byte
	// Stored is the layout this node persisted, or nil on first start.
	Stored *ClusterLayout
	// Partitions and Replicas shape a new cluster.
	Partitions, Replicas int
	// Save persists a layout before the node adopts it.
	Save func(*ClusterLayout) error
	// OnChange is called with each newly adopted ring.
	OnChange func(*Ring)
	S3Addr   string
	Logger   *slog.Logger
	// Fast shortens memberlist's timers for tests on one machine.
	Fast bool
}

type delegate struct{ m *Membership }

// StartMembership starts gossip, joins the cluster if Join is set, and
// makes sure this node is in the layout.
func StartMembership(cfg MembershipConfig) (*Membership, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Membership{cfg: cfg, alive: map[string]bool{string(cfg.Self): true}, addrs: map[string]NodeMeta{}}
	switch {
	case cfg.Stored != nil:
		if err := m.adopt(cfg.Stored, false); err != nil {
			return nil, err
		}
	case len(cfg.Join) == 0:
		l, err := NewClusterLayout(cfg.Member, cfg.Partitions, cfg.Replicas)
		if err != nil {
			return nil, err
		}
		if err := m.adopt(l, true); err != nil {
			return nil, err
		}
	}
	host, portS, err := net.SplitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	mc := memberlist.DefaultLANConfig()
	if cfg.Fast {
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.SuspicionMult = 2
		mc.PushPullInterval = 2 * time.Second
		mc.GossipInterval = 50 * time.Millisecond
	} else {
		mc.PushPullInterval = 10 * time.Second
	}
	mc.Name = string(cfg.Self)
	if host != "" && net.ParseIP(host) == nil {
		// A host name (as in docker-compose): memberlist binds IPs.
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return nil, fmt.Errorf("gossip address %q: cannot resolve %s: %v", cfg.GossipAddr, host, err)
		}
		host = ips[0].String()
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.AdvertiseAddr != "" {
		ah, ap, err := net.SplitHostPort(cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
		mc.AdvertiseAddr = ah
		if mc.AdvertisePort, err = strconv.Atoi(ap); err != nil {
			return nil, fmt.Errorf("advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
	} else if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		mc.AdvertiseAddr = host
	}
	if len(cfg.Secret) > 0 {
		key := sha256.Sum256(append([]byte("ringstore gossip key\x00"), cfg.Secret...))
		mc.SecretKey = key[:]
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Delegate = delegate{m}
	mc.Events = delegate{m}
	mc.Logger = log.New(slogWriter{cfg.Logger.With("component", "memberlist")}, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.GossipAddr, err)
	}
	m.mu.Lock()
	m.ml = ml
	m.mu.Unlock()
	if len(cfg.Join) > 0 {
		if _, err := ml.Join(cfg.Join); err != nil {
			_ = ml.Shutdown()
			return nil, fmt.Errorf("join %v: %w", cfg.Join, err)
		}
		// The push-pull exchange of the join carried the cluster's layout;
		// wait for it briefly before checking that we are in it.
		deadline := time.Now().Add(10 * time.Second)
		for m.Current() == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if m.Current() == nil {
			_ = ml.Shutdown()
			return nil, errors.New("joined gossip but received no cluster layout")
		}
	}
	m.ensureMember()
	return m, nil
}

// Current returns the adopted layout (nil before the first one).
func (m *Membership) Current() *ClusterLayout {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current
}

// Ring returns the current placement snapshot.
func (m *Membership) Ring() *Ring {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ring
}

// Alive reports whether node is reachable as far as gossip knows.
func (m *Membership) Alive(node string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.alive[node]
}

// MemberStatus is one layout member with its liveness.
type MemberStatus struct {
	Member
	Alive bool
	Meta  NodeMeta
}

// Status lists the layout's members and whether each is alive.
func (m *Membership) Status() []MemberStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.current == nil {
		return nil
	}
	var out []MemberStatus
	for _, mem := range m.current.Layout.sortedMembers() {
		out = append(out, MemberStatus{Member: mem, Alive: m.alive[string(mem.ID)], Meta: m.addrs[string(mem.ID)]})
	}
	return out
}

// adopt persists and installs l if it is newer than the current layout.
func (m *Membership) adopt(l *ClusterLayout, announce bool) error {
	rg, err := l.Ring()
	if err != nil {
		return err
	}
	m.mu.Lock()
	if !l.Newer(m.current) {
		m.mu.Unlock()
		return nil
	}
	if m.cfg.Save != nil {
		if err := m.cfg.Save(l); err != nil {
			m.mu.Unlock()
			return fmt.Errorf("persist layout: %w", err)
		}
	}
	m.current, m.ring = l, rg
	m.mu.Unlock()
	m.cfg.Logger.Info("layout adopted", "version", l.Layout.Version, "members", len(l.Layout.Members))
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(rg)
	}
	if announce {
		// Not from the caller's goroutine: adopt runs inside memberlist's
		// callbacks, which must not block on dialing other nodes.
		go m.announce(l)
	}
	return nil
}

// announce sends the layout to every alive member over TCP.
func (m *Membership) announce(l *ClusterLayout) {
	m.mu.Lock()
	ml := m.ml
	m.mu.Unlock()
	if ml == nil {
		return
	}
	b, err := l.MarshalBinary()
	if err != nil {
		return
	}
	for _, n := range ml.Members() {
		if n.Name == string(m.cfg.Self) {
			continue
		}
		if err := ml.SendReliable(n, b); err != nil {
			m.cfg.Logger.Debug("layout announce failed", "node", n.Name, "err", err)
		}
	}
}

// ensureMember adds this node to the layout when it is not in it (and
// was not removed).
func (m *Membership) ensureMember() {
	cur := m.Current()
	if cur == nil {
		return
	}
	if cur.IsRemoved(m.cfg.Self) {
		m.cfg.Logger.Warn("this node was removed from the cluster; it serves nothing and must be shut down")
		return
	}
	if mem, ok := cur.Layout.Member(m.cfg.Self); ok && mem == m.cfg.Member {
		return
	}
	if err := m.adopt(cur.With(m.cfg.Member), true); err != nil {
		m.cfg.Logger.Error("join layout", "err", err)
	}
}

// Remove takes node out of the layout for good and spreads the change.
func (m *Membership) Remove(node NodeID) error {
	cur := m.Current()
	if cur == nil {
		return errors.New("no layout yet")
	}
	next, err := cur.Without(node)
	if err != nil {
		return err
	}
	return m.adopt(next, true)
}

// Leave announces departure and stops gossip.
func (m *Membership) Leave() error {
	m.mu.Lock()
	ml := m.ml
	m.mu.Unlock()
	if ml == nil {
		return nil
	}
	_ = ml.Leave(2 * time.Second)
	return ml.Shutdown()
}

// received merges a layout heard from another node.
func (m *Membership) received(b []byte) {
	var l ClusterLayout
	if err := l.UnmarshalBinary(b); err != nil {
		m.cfg.Logger.Warn("bad layout from gossip", "err", err)
		return
	}
	if err := m.adopt(&l, false); err != nil {
		m.cfg.Logger.Error("adopt layout", "err", err)
		return
	}
	m.ensureMember()
}

func (d delegate) NodeMeta(limit int) []byte {
	meta := d.m.cfg.Member.Addr + "\x00" + d.m.cfg.S3Addr + "\x00" + d.m.cfg.Member.Zone
	if len(meta) > limit {
		return nil
	}
	return []byte(meta)
}

func (d delegate) NotifyMsg(b []byte)                         { d.m.received(slices.Clone(b)) }
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

func (d delegate) LocalState(bool) []byte {
	cur := d.m.Current()
	if cur == nil {
		return nil
	}
	b, _ := cur.MarshalBinary()
	return b
}

func (d delegate) MergeRemoteState(b []byte, _ bool) {
	if len(b) > 0 {
		d.m.received(slices.Clone(b))
	}
}

func parseMeta(b []byte) NodeMeta {
	parts := bytesSplit(string(b))
	var meta NodeMeta
	if len(parts) > 0 {
		meta.RPCAddr = parts[0]
	}
	if len(parts) > 1 {
		meta.S3Addr = parts[1]
	}
	if len(parts) > 2 {
		meta.Zone = parts[2]
	}
	return meta
}

func bytesSplit(s string) []string {
	var out []string
	for {
		i := 0
		for i < len(s) && s[i] != 0 {
			i++
		}
		out = append(out, s[:i])
		if i == len(s) {
			return out
		}
		s = s[i+1:]
	}
}

func (d delegate) NotifyJoin(n *memberlist.Node) {
	d.m.mu.Lock()
	d.m.alive[n.Name] = true
	d.m.addrs[n.Name] = parseMeta(n.Meta)
	d.m.mu.Unlock()
	d.m.cfg.Logger.Info("node alive", "node", n.Name, "addr", n.Address())
}

func (d delegate) NotifyLeave(n *memberlist.Node) {
	if n.Name == string(d.m.cfg.Self) {
		return
	}
	d.m.mu.Lock()
	d.m.alive[n.Name] = false
	d.m.mu.Unlock()
	d.m.cfg.Logger.Warn("node unreachable", "node", n.Name)
}

func (d delegate) NotifyUpdate(n *memberlist.Node) {
	d.m.mu.Lock()
	d.m.addrs[n.Name] = parseMeta(n.Meta)
	d.m.mu.Unlock()
}

// slogWriter routes memberlist's log lines to slog at debug level (its
// own levels are in the text).
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(bytesTrim(p))
	switch {
	case len(msg) > 7 && msg[:7] == "[ERR] m":
		w.l.Warn(msg)
	default:
		w.l.Debug(msg)
	}
	return len(p), nil
}

func bytesTrim(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == ' ') {
		p = p[:len(p)-1]
	}
	return p
}

var _ io.Writer = slogWriter{}
