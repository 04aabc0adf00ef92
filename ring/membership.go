package ring

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ringstore/ringstore/internal/lograte"
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

	// deliverMu orders the calls of OnChange: each delivery holds it
	// while it reads the newest view and hands it over, so a view read
	// earlier is never handed over after one read later. It is taken
	// before mu, never while holding it.
	deliverMu sync.Mutex
	delivered *View // the view OnChange was last called with; deliverMu

	mu       sync.Mutex // guards the following fields
	ml       *memberlist.Memberlist
	current  *ClusterLayout
	trackers *Trackers
	// view is derived from current and trackers and replaced only when
	// the placement changes; viewOf is the layout it was derived from.
	view   *View
	viewOf *ClusterLayout
	alive  map[string]bool
	addrs  map[string]NodeMeta
	// changedAt is when the current layout was adopted and readAt when the
	// read version last moved; acknowledgements wait SettleDelay past them.
	changedAt, readAt time.Time
	stop              chan struct{}
}

// View is the placement a node uses at one moment: the rings of the
// active layout versions (oldest first; writes go to all of them), the
// ring reads use, and the current ring.
type View struct {
	Active  []*Ring
	Read    *Ring
	Current *Ring
	// Moving is true while more than one version is active.
	Moving bool
}

// NodeMeta is what a node tells others about itself through gossip.
type NodeMeta struct {
	RPCAddr string
	S3Addr  string
	Zone    string
	Weight  uint32
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
	// BootstrapExpect, above 1, forms a new cluster with that many nodes
	// at once. The node without Join waits until that many nodes
	// (itself included) are in its gossip, then makes the first layout
	// with all of them; nodes with Join retry their seeds and wait for
	// that layout. A cluster grown one node at a time instead passes
	// through a layout version per node, and until those retire (a sync
	// and two settle delays, about 30 s at the defaults) every write also
	// needs the first node and reads go to it alone. Ignored once a node
	// has a layout.
	BootstrapExpect int
	// StoredTrackers are the trackers this node persisted, or nil.
	StoredTrackers *Trackers
	// Save persists a layout before the node adopts it.
	Save func(*ClusterLayout) error
	// SaveTrackers persists the trackers before they are announced.
	SaveTrackers func(*Trackers) error
	// Peers are gossip addresses of other nodes seen before (persisted by
	// SavePeers); a restarting node tries them as well as Join, so a node
	// restarted without --join still finds its cluster.
	Peers     []string
	SavePeers func([]string) error
	// OnChange is called with each new placement view: a new layout, or a
	// step of a data move. Calls never overlap and come in the order the
	// views were adopted: a view is never followed by an older one, and
	// views adopted in quick succession may be passed over for the newest.
	// StartMembership returns only after OnChange has had the view the
	// node starts with. It runs on whichever goroutine changed the view
	// (gossip's among them), so it must be quick, and it must not call the
	// Membership's methods that change the layout or the trackers (Remove,
	// Skip, MarkSynced): they wait for it.
	OnChange func(*View)
	// SettleDelay is how long after a change this node waits before
	// acknowledging it (so its requests started under the old view have
	// finished); 0 means 10s.
	SettleDelay time.Duration
	S3Addr      string
	Logger      *slog.Logger
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
	if cfg.SettleDelay == 0 {
		cfg.SettleDelay = 10 * time.Second
	}
	m := &Membership{cfg: cfg, alive: map[string]bool{string(cfg.Self): true}, addrs: map[string]NodeMeta{}, trackers: NewTrackers(), stop: make(chan struct{})}
	if cfg.StoredTrackers != nil {
		m.trackers.Merge(cfg.StoredTrackers)
	}
	switch {
	case cfg.Stored != nil:
		if err := m.adopt(cfg.Stored, false); err != nil {
			return nil, err
		}
	case len(cfg.Join) == 0 && cfg.BootstrapExpect <= 1:
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
	mc.Logger = log.New(lograte.NewWriter(cfg.Logger.With("component", "memberlist"), memberlistLevel), "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.GossipAddr, err)
	}
	m.mu.Lock()
	m.ml = ml
	m.mu.Unlock()
	if cfg.Stored != nil {
		for _, p := range cfg.Peers {
			if !slices.Contains(cfg.Join, p) && p != mc.AdvertiseAddr+":"+strconv.Itoa(mc.AdvertisePort) {
				cfg.Join = append(cfg.Join, p)
			}
		}
		m.cfg.Join = cfg.Join
	}
	if len(cfg.Join) > 0 && cfg.Stored != nil {
		// A node that has been in the cluster knows its layout already: it
		// serves at once and keeps trying its seeds until one answers (they
		// may be restarting too).
		if _, err := ml.Join(cfg.Join); err != nil {
			cfg.Logger.Warn("join failed, retrying in the background", "seeds", cfg.Join, "err", err)
			go m.rejoin()
		}
	} else if len(cfg.Join) > 0 && cfg.BootstrapExpect > 1 {
		if err := m.awaitFirstLayout(ml); err != nil {
			_ = ml.Shutdown()
			return nil, err
		}
	} else if len(cfg.Join) > 0 {
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
	} else if cfg.Stored == nil && cfg.BootstrapExpect > 1 {
		if err := m.formCluster(ml); err != nil {
			_ = ml.Shutdown()
			return nil, err
		}
	}
	m.ensureMember()
	// The layout may have been adopted on one of gossip's goroutines, whose
	// OnChange call may still be under way: callers use the placement as
	// soon as this returns.
	m.deliver()
	go m.tickLoop()
	return m, nil
}

// formCluster waits until BootstrapExpect nodes are in gossip and adopts
// a first layout with all of them, unless a layout arrives first.
func (m *Membership) formCluster(ml *memberlist.Memberlist) error {
	want := m.cfg.BootstrapExpect
	m.cfg.Logger.Info("waiting for the nodes of a new cluster", "want", want)
	lastLog := time.Now()
	for {
		if m.Current() != nil {
			return nil
		}
		var members []Member
		for _, n := range ml.Members() {
			if n.Name == string(m.cfg.Self) {
				members = append(members, m.cfg.Member)
				continue
			}
			meta := parseMeta(n.Meta)
			if meta.RPCAddr == "" {
				continue
			}
			members = append(members, Member{ID: NodeID(n.Name), Zone: meta.Zone, Weight: meta.Weight, Addr: meta.RPCAddr})
		}
		if len(members) >= want {
			l, err := NewClusterLayoutOf(members, m.cfg.Partitions, m.cfg.Replicas)
			if err != nil {
				return fmt.Errorf("form a cluster of %d nodes: %w", len(members), err)
			}
			if err := m.adopt(l, true); err != nil {
				return err
			}
			m.cfg.Logger.Info("formed a new cluster", "members", len(members))
			return nil
		}
		if time.Since(lastLog) > 10*time.Second {
			m.cfg.Logger.Info("waiting for the nodes of a new cluster", "have", len(members), "want", want)
			lastLog = time.Now()
		}
		select {
		case <-m.stop:
			return errors.New("stopped while waiting for the nodes of a new cluster")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// awaitFirstLayout joins a seed, retrying while none answers (the seeds of
// a new cluster start at about the same time), and waits for the layout
// the first node forms once enough nodes are in.
func (m *Membership) awaitFirstLayout(ml *memberlist.Memberlist) error {
	lastLog := time.Now()
	joined := false
	for m.Current() == nil {
		if !joined {
			if _, err := ml.Join(m.cfg.Join); err == nil {
				joined = true
			} else if time.Since(lastLog) > 10*time.Second {
				m.cfg.Logger.Warn("no seed answers yet; retrying", "seeds", m.cfg.Join, "err", err)
				lastLog = time.Now()
			}
		} else if time.Since(lastLog) > 10*time.Second {
			m.cfg.Logger.Info("waiting for the new cluster's first layout", "want", m.cfg.BootstrapExpect)
			lastLog = time.Now()
		}
		select {
		case <-m.stop:
			return errors.New("stopped while waiting for the new cluster's first layout")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// rememberPeer adds a gossip address to the persisted peers.
func (m *Membership) rememberPeer(addr string) {
	if m.cfg.SavePeers == nil {
		return
	}
	m.mu.Lock()
	if slices.Contains(m.cfg.Peers, addr) {
		m.mu.Unlock()
		return
	}
	m.cfg.Peers = append(m.cfg.Peers, addr)
	if len(m.cfg.Peers) > 64 {
		m.cfg.Peers = m.cfg.Peers[len(m.cfg.Peers)-64:]
	}
	peers := slices.Clone(m.cfg.Peers)
	m.mu.Unlock()
	if err := m.cfg.SavePeers(peers); err != nil {
		m.cfg.Logger.Warn("persist peers", "err", err)
	}
}

// rejoin retries the seeds until gossip reaches another node.
func (m *Membership) rejoin() {
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		select {
		case <-m.stop:
			return
		case <-time.After(delay):
		}
		m.mu.Lock()
		ml := m.ml
		m.mu.Unlock()
		if ml.NumMembers() > 1 {
			return
		}
		if _, err := ml.Join(m.cfg.Join); err == nil {
			m.cfg.Logger.Info("joined the cluster", "seeds", m.cfg.Join)
			return
		}
	}
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
	if m.view == nil {
		return nil
	}
	return m.view.Current
}

// View returns the placement view.
func (m *Membership) View() *View {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view
}

// Trackers returns a copy of the data-move trackers.
func (m *Membership) Trackers() *Trackers {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.trackers.Clone()
}

// computeViewLocked derives the view from the layout and trackers.
func (m *Membership) computeViewLocked() (*View, error) {
	active := m.current.Active(m.trackers)
	v := &View{Moving: len(active) > 1}
	for _, a := range active {
		r, err := a.Ring()
		if err != nil {
			return nil, err
		}
		v.Active = append(v.Active, r)
	}
	v.Current = v.Active[len(v.Active)-1]
	read := m.current.ReadVersion(m.trackers)
	for i, a := range active {
		if a.Version() == read.Version() {
			v.Read = v.Active[i]
		}
	}
	return v, nil
}

// refreshLocked recomputes the view and reports whether it changed. An
// unchanged view keeps its identity, which is how deliver tells that
// OnChange has it already.
func (m *Membership) refreshLocked() (*View, bool, error) {
	v, err := m.computeViewLocked()
	if err != nil {
		return nil, false, err
	}
	old := m.view
	// A layout of the same version can replace another (concurrent
	// changes resolve by hash), so the layout itself is compared too.
	changed := old == nil || m.viewOf != m.current || old.Read.Version() != v.Read.Version() || len(old.Active) != len(v.Active) || old.Current.Version() != v.Current.Version()
	if !changed {
		return old, false, nil
	}
	if old == nil || old.Read.Version() != v.Read.Version() {
		m.readAt = time.Now()
	}
	m.view, m.viewOf = v, m.current
	return v, true, nil
}

// deliver calls OnChange with the newest view unless it had that one
// last. Every change of the view is followed by a deliver from the
// goroutine that made it; when several race, the one that takes
// deliverMu last hands over the newest view, and the others hand over
// a view no older than the one before.
func (m *Membership) deliver() {
	if m.cfg.OnChange == nil {
		return
	}
	m.deliverMu.Lock()
	defer m.deliverMu.Unlock()
	m.mu.Lock()
	v := m.view
	m.mu.Unlock()
	if v == nil || v == m.delivered {
		return
	}
	m.delivered = v
	m.cfg.OnChange(v)
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
	if _, err := l.Ring(); err != nil {
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
	m.current = l
	m.changedAt = time.Now()
	v, _, err := m.refreshLocked()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	m.cfg.Logger.Info("layout adopted", "version", l.Layout.Version, "members", len(l.Layout.Members), "active_versions", len(v.Active))
	m.deliver()
	if announce {
		// Not from the caller's goroutine: adopt runs inside memberlist's
		// callbacks, which must not block on dialing other nodes.
		go m.announce()
	}
	return nil
}

// Message kinds on the gossip user channel and in push-pull state.
const (
	msgState byte = 1 // layout and trackers
)

func (m *Membership) encodeState() []byte {
	m.mu.Lock()
	cur, tr := m.current, m.trackers.Clone()
	m.mu.Unlock()
	if cur == nil {
		return nil
	}
	lb, err := cur.MarshalBinary()
	if err != nil {
		return nil
	}
	tb, _ := tr.MarshalBinary()
	out := []byte{msgState}
	out = binary.AppendUvarint(out, uint64(len(lb)))
	out = append(out, lb...)
	return append(out, tb...)
}

// announce sends the layout and trackers to every alive member over TCP.
func (m *Membership) announce() {
	m.mu.Lock()
	ml := m.ml
	m.mu.Unlock()
	if ml == nil {
		return
	}
	b := m.encodeState()
	if b == nil {
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
	if err := m.adopt(cur.With(m.cfg.Member, m.Trackers().Retired), true); err != nil {
		m.cfg.Logger.Error("join layout", "err", err)
	}
}

// Remove takes node out of the layout for good and spreads the change.
func (m *Membership) Remove(node NodeID) error {
	cur := m.Current()
	if cur == nil {
		return errors.New("no layout yet")
	}
	next, err := cur.Without(node, m.Trackers().Retired)
	if err != nil {
		return err
	}
	return m.adopt(next, true)
}

// Skip lets data moves finish without a node that is gone for good. A
// move waits for every node of its layout versions to acknowledge, push
// its data and settle; a dead node never does, and the move would stall,
// every write going to both layouts for good. Skipping sets the node's
// trackers past every version. Only a node removed from the layout and
// not alive here can be skipped: what it held is also on its partitions'
// other owners (every acknowledged write reached a write quorum of them),
// which push it to the new owners themselves.
func (m *Membership) Skip(node NodeID) error {
	cur := m.Current()
	if cur == nil {
		return errors.New("no layout yet")
	}
	if !cur.IsRemoved(node) {
		return fmt.Errorf("node %s is not removed from the layout; remove it first", node)
	}
	if node == m.cfg.Self || m.Alive(string(node)) {
		return fmt.Errorf("node %s is alive: it pushes its data and the move finishes without skipping it", node)
	}
	t := NewTrackers()
	t.Ack[node], t.Sync[node], t.SyncAck[node] = Skipped, Skipped, Skipped
	m.mergeTrackers(t, true)
	m.cfg.Logger.Warn("node skipped: data moves no longer wait for it", "node", node)
	return nil
}

// Skipped is the tracker value of a node skipped for good (Skip).
const Skipped = ^uint64(0)

// Leave announces departure and stops gossip.
func (m *Membership) Leave() error {
	m.mu.Lock()
	ml := m.ml
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.mu.Unlock()
	if ml == nil {
		return nil
	}
	_ = ml.Leave(2 * time.Second)
	return ml.Shutdown()
}

// received merges a layout and trackers heard from another node.
func (m *Membership) received(b []byte) {
	if len(b) == 0 || b[0] != msgState {
		m.cfg.Logger.Warn("unknown gossip message")
		return
	}
	b = b[1:]
	n, l := binary.Uvarint(b)
	if l <= 0 || uint64(len(b)-l) < n {
		m.cfg.Logger.Warn("truncated gossip state")
		return
	}
	var cl ClusterLayout
	if err := cl.UnmarshalBinary(b[l : l+int(n)]); err != nil {
		m.cfg.Logger.Warn("bad layout from gossip", "err", err)
		return
	}
	var tr Trackers
	if err := tr.UnmarshalBinary(b[l+int(n):]); err != nil {
		m.cfg.Logger.Warn("bad trackers from gossip", "err", err)
		return
	}
	if err := m.adopt(&cl, false); err != nil {
		m.cfg.Logger.Error("adopt layout", "err", err)
		return
	}
	m.mergeTrackers(&tr, false)
	m.ensureMember()
}

// mergeTrackers folds t in, persists and publishes the result when it
// changed anything.
func (m *Membership) mergeTrackers(t *Trackers, announce bool) {
	m.mu.Lock()
	if !m.trackers.Merge(t) {
		m.mu.Unlock()
		return
	}
	if m.cfg.SaveTrackers != nil {
		if err := m.cfg.SaveTrackers(m.trackers); err != nil {
			m.cfg.Logger.Error("persist trackers", "err", err)
		}
	}
	var v *View
	var changed bool
	var err error
	if m.current != nil {
		v, changed, err = m.refreshLocked()
	}
	m.mu.Unlock()
	if err != nil {
		m.cfg.Logger.Error("placement view", "err", err)
		return
	}
	if changed {
		m.cfg.Logger.Info("placement view changed", "read_version", v.Read.Version(), "active_versions", len(v.Active))
		m.deliver()
	}
	if announce {
		go m.announce()
	}
}

// NeedsSync returns the current layout version when this node must push
// data to its owners: every node acknowledged it and this node has not
// synced it yet.
func (m *Membership) NeedsSync() (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.current == nil {
		return 0, false
	}
	v := m.current.Layout.Version
	active := m.current.Active(m.trackers)
	if m.trackers.Sync[m.cfg.Self] >= v || minOver(m.trackers.Ack, Nodes(active)) < v {
		return 0, false
	}
	return v, true
}

// MarkSynced records that this node pushed its data for version v.
func (m *Membership) MarkSynced(v uint64) {
	t := NewTrackers()
	t.Sync[m.cfg.Self] = v
	m.mergeTrackers(t, true)
}

// tick advances this node's trackers: Ack a layout once settled, SyncAck
// a read version once settled, and retire versions every node is done
// with.
func (m *Membership) tick() {
	m.mu.Lock()
	if m.current == nil {
		m.mu.Unlock()
		return
	}
	now := time.Now()
	t := NewTrackers()
	self := m.cfg.Self
	v := m.current.Layout.Version
	if m.trackers.Ack[self] < v && now.Sub(m.changedAt) >= m.cfg.SettleDelay {
		t.Ack[self] = v
	}
	active := m.current.Active(m.trackers)
	nodes := Nodes(active)
	read := m.current.ReadVersion(m.trackers).Version()
	if m.trackers.SyncAck[self] < read && now.Sub(m.readAt) >= m.cfg.SettleDelay {
		t.SyncAck[self] = read
	}
	if done := minOver(m.trackers.SyncAck, nodes); done > m.trackers.Retired && len(active) > 1 {
		t.Retired = done
	}
	// A node that is no longer in any version keeps nothing to track.
	m.mu.Unlock()
	m.mergeTrackers(t, true)
}

func (m *Membership) tickLoop() {
	every := m.cfg.SettleDelay / 10
	if every < 50*time.Millisecond {
		every = 50 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.tick()
		}
	}
}

func (d delegate) NodeMeta(limit int) []byte {
	meta := d.m.cfg.Member.Addr + "\x00" + d.m.cfg.S3Addr + "\x00" + d.m.cfg.Member.Zone + "\x00" + strconv.FormatUint(uint64(d.m.cfg.Member.Weight), 10)
	if len(meta) > limit {
		return nil
	}
	return []byte(meta)
}

func (d delegate) NotifyMsg(b []byte)                         { d.m.received(slices.Clone(b)) }
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

func (d delegate) LocalState(bool) []byte { return d.m.encodeState() }

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
	// Nodes that do not send a weight have the default one.
	meta.Weight = 1
	if len(parts) > 3 {
		if w, err := strconv.ParseUint(parts[3], 10, 32); err == nil && w > 0 {
			meta.Weight = uint32(w)
		}
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
	if n.Name != string(d.m.cfg.Self) {
		d.m.rememberPeer(n.Address())
	}
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

// memberlistLevel is the slog level of a memberlist log line: its errors
// are warnings, everything else is debug (its own level is in the text).
// Every line goes through a rate limit per kind: memberlist logs each
// packet or connection it cannot read, so garbage sent at the gossip port
// would otherwise write the log as fast as it arrives.
func memberlistLevel(line string) slog.Level {
	if strings.HasPrefix(line, "[ERR] m") {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}
