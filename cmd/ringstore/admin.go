package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/rpc"
	"github.com/ringstore/ringstore/ring"
)

// The admin commands talk to a node's RPC port in the nodes' own protocol:
// TLS 1.3 with a certificate derived from the cluster secret, whose role
// reaches the admin services only.

// clusterStatus is the answer of admin.status.
type clusterStatus struct {
	Node           string         `json:"node"`
	LayoutVersion  uint64         `json:"layout_version"`
	Partitions     int            `json:"partitions"`
	Replicas       int            `json:"replicas"`
	ReadVersion    uint64         `json:"read_version"`
	ActiveVersions []uint64       `json:"active_versions"`
	Members        []memberStatus `json:"members"`
	HintOwners     []string       `json:"hint_owners"`
	AntiEntropy    aeStatus       `json:"anti_entropy"`
	Scrub          scrubStatus    `json:"scrub"`
	ChunkRepair    chunkRepair    `json:"chunk_anti_entropy"`
}

// chunkRepair is the progress of chunk anti-entropy (blobs.RepairStats).
type chunkRepair struct {
	Passes       int64  `json:"passes"`
	LastPass     string `json:"last_pass,omitempty"`
	LastMissing  int64  `json:"last_missing"`
	Checked      int64  `json:"checked"`
	Missing      int64  `json:"missing"`
	Fetched      int64  `json:"fetched"`
	FetchedBytes int64  `json:"fetched_bytes"`
	Unavailable  int64  `json:"unavailable"`
}

type scrubStatus struct {
	Passes, Records, DamagedPartitions, RepairedPartitions int64
	Chunks, CorruptChunks, RepairedChunks                  int64
}

type aeStatus struct {
	Rounds              int64   `json:"rounds"`
	PartitionsCompared  int64   `json:"partitions_compared"`
	PartitionsDiffering int64   `json:"partitions_differing"`
	RecordsPulled       int64   `json:"records_pulled"`
	RecordsPushed       int64   `json:"records_pushed"`
	LastRound           string  `json:"last_round,omitempty"`
	LastRoundSeconds    float64 `json:"last_round_seconds"`
	LastRoundBytes      int64   `json:"last_round_bytes"`
	BytesSent           int64   `json:"bytes_sent"`
	BytesReceived       int64   `json:"bytes_received"`
}

type memberStatus struct {
	ID         string `json:"id"`
	Zone       string `json:"zone"`
	Weight     uint32 `json:"weight"`
	RPCAddr    string `json:"rpc_addr"`
	S3Addr     string `json:"s3_addr"`
	Alive      bool   `json:"alive"`
	Partitions int    `json:"partitions"`
	Ack        uint64 `json:"ack"`
	Sync       uint64 `json:"sync"`
	SyncAck    uint64 `json:"sync_ack"`
	Leaving    bool   `json:"leaving,omitempty"`
}

func registerAdmin(mux *rpc.Mux, m *ring.Membership, ix *index.Index, scrub *scrubStats, chunkAE *blobs.RepairStats) {
	mux.Handle("admin.status", func(context.Context, string, []byte) ([]byte, error) {
		cur := m.Current()
		if cur == nil {
			return nil, errors.New("no layout yet")
		}
		st := clusterStatus{LayoutVersion: cur.Layout.Version, Partitions: cur.Layout.Partitions, Replicas: cur.Layout.Replicas}
		tr := m.Trackers()
		st.ReadVersion = cur.ReadVersion(tr).Version()
		active := cur.Active(tr)
		for _, a := range active {
			st.ActiveVersions = append(st.ActiveVersions, a.Version())
		}
		alive := map[ring.NodeID]bool{}
		for _, ms := range m.Status() {
			alive[ms.ID] = ms.Alive
		}
		for _, id := range ring.Nodes(active) {
			mem, inCurrent := cur.Layout.Member(id)
			if !inCurrent {
				for _, a := range active {
					if am, ok := a.Layout.Member(id); ok {
						mem = am
					}
				}
			}
			st.Members = append(st.Members, memberStatus{
				ID: string(id), Zone: mem.Zone, Weight: mem.Weight, RPCAddr: mem.Addr,
				Alive: alive[id] || m.Alive(string(id)), Partitions: len(cur.Assignment.PartitionsOf(id)),
				Ack: tr.Ack[id], Sync: tr.Sync[id], SyncAck: tr.SyncAck[id], Leaving: !inCurrent,
			})
		}
		owners, err := ix.Store().HintOwners()
		if err != nil {
			return nil, err
		}
		st.HintOwners = owners
		ae := ix.AEStats()
		st.AntiEntropy = aeStatus{
			Rounds: ae.Rounds.Load(), PartitionsCompared: ae.PartitionsCompared.Load(), PartitionsDiffering: ae.PartitionsDiffering.Load(),
			RecordsPulled: ae.RecordsPulled.Load(), RecordsPushed: ae.RecordsPushed.Load(), LastRoundSeconds: float64(ae.LastRoundNanos.Load()) / 1e9,
			LastRoundBytes: ae.LastRoundBytes.Load(), BytesSent: ae.BytesSent.Load(), BytesReceived: ae.BytesReceived.Load(),
		}
		if ns := ae.LastRoundUnixNano.Load(); ns > 0 {
			st.AntiEntropy.LastRound = time.Unix(0, ns).UTC().Format(time.RFC3339)
		}
		st.Scrub = scrubStatus{
			Passes: scrub.records.Passes.Load(), Records: scrub.records.Records.Load(), DamagedPartitions: scrub.records.Corrupt.Load(),
			RepairedPartitions: scrub.records.Repaired.Load(), Chunks: scrub.chunks.Chunks.Load(), CorruptChunks: scrub.chunks.Corrupt.Load(),
			RepairedChunks: scrub.chunks.Repaired.Load(),
		}
		st.ChunkRepair = chunkRepair{
			Passes: chunkAE.Passes.Load(), LastMissing: chunkAE.LastMissing.Load(), Checked: chunkAE.Checked.Load(),
			Missing: chunkAE.Missing.Load(), Fetched: chunkAE.Fetched.Load(), FetchedBytes: chunkAE.FetchedBytes.Load(),
			Unavailable: chunkAE.Unavailable.Load(),
		}
		if ns := chunkAE.LastPassUnixNano.Load(); ns > 0 {
			st.ChunkRepair.LastPass = time.Unix(0, ns).UTC().Format(time.RFC3339)
		}
		return json.Marshal(st)
	})
	mux.Handle("admin.remove", func(_ context.Context, _ string, body []byte) ([]byte, error) {
		return nil, m.Remove(ring.NodeID(body))
	})
	mux.Handle("admin.skip", func(_ context.Context, _ string, body []byte) ([]byte, error) {
		return nil, m.Skip(ring.NodeID(body))
	})
	mux.Handle("admin.key.create", func(ctx context.Context, _ string, body []byte) ([]byte, error) {
		k := &index.AccessKey{
			ID:     "RS" + randomString(18, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
			Secret: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
			Name:   string(body), Created: ix.Clock().Now(),
		}
		if err := ix.PutAccessKey(ctx, k); err != nil {
			return nil, err
		}
		return json.Marshal(keyInfo{ID: k.ID, Secret: k.Secret, Name: k.Name})
	})
	mux.Handle("admin.key.list", func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		keys, err := ix.ListAccessKeys(ctx)
		if err != nil {
			return nil, err
		}
		out := []keyInfo{}
		for _, k := range keys {
			out = append(out, keyInfo{ID: k.ID, Name: k.Name, Created: k.Created.Time().Format(time.RFC3339), Revoked: !k.Live()})
		}
		return json.Marshal(out)
	})
	mux.Handle("admin.key.delete", func(ctx context.Context, _ string, body []byte) ([]byte, error) {
		k, err := ix.GetAccessKey(ctx, string(body))
		if err != nil {
			return nil, err
		}
		if k == nil {
			return nil, fmt.Errorf("no access key %s", body)
		}
		k.Deleted = ix.Clock().Now()
		return nil, ix.PutAccessKey(ctx, k)
	})
}

// keyInfo describes an access key to the admin tool; Secret only at
// creation.
type keyInfo struct {
	ID      string `json:"id"`
	Secret  string `json:"secret,omitempty"`
	Name    string `json:"name,omitempty"`
	Created string `json:"created,omitempty"`
	Revoked bool   `json:"revoked,omitempty"`
}

func adminCmd() *cobra.Command {
	var addr, secret string
	cmd := &cobra.Command{Use: "admin", Short: "Inspect and change a running cluster"}
	cmd.PersistentFlags().StringVar(&addr, "rpc", envOr("RINGSTORE_RPC_ADDR", "127.0.0.1:9001"), "RPC address of any node [RINGSTORE_RPC_ADDR]")
	cmd.PersistentFlags().Var(secretDefault(&secret, envOr("RINGSTORE_CLUSTER_SECRET", "")), "cluster-secret", "cluster secret [RINGSTORE_CLUSTER_SECRET]")
	call := func(service string, body []byte) ([]byte, error) {
		if err := rpc.CheckSecret([]byte(secret)); err != nil {
			return nil, err
		}
		t := &rpc.Stream{Self: "admin", Role: rpc.RoleAdmin, Secret: []byte(secret),
			Resolve: func(string) (string, bool) { return addr, true }}
		defer t.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// "": whichever node answers at addr.
		return t.Call(ctx, "", service, body)
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the layout, liveness and pending hints as one node sees them",
		RunE: func(*cobra.Command, []string) error {
			b, err := call("admin.status", nil)
			if err != nil {
				return err
			}
			var st clusterStatus
			if err := json.Unmarshal(b, &st); err != nil {
				return err
			}
			fmt.Printf("layout version %d, %d partitions, %d replicas\n", st.LayoutVersion, st.Partitions, st.Replicas)
			if len(st.ActiveVersions) > 1 {
				fmt.Printf("data moving: active versions %v, reads on version %d\n", st.ActiveVersions, st.ReadVersion)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tZONE\tWEIGHT\tPARTITIONS\tSTATE\tACK/SYNC/READ\tRPC")
			for _, m := range st.Members {
				state := "alive"
				if !m.Alive {
					state = "unreachable"
				}
				if m.Leaving {
					state += ",leaving"
				}
				trackers := fmt.Sprintf("%d/%d/%d", m.Ack, m.Sync, m.SyncAck)
				if m.Ack == ring.Skipped {
					trackers = "skipped"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", m.ID, m.Zone, m.Weight, m.Partitions, state, trackers, m.RPCAddr)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if len(st.HintOwners) > 0 {
				fmt.Printf("holding hints for: %s\n", strings.Join(st.HintOwners, ", "))
			}
			sc := st.Scrub
			fmt.Printf("scrub: %d passes, %d records (%d damaged partitions, %d repaired), %d chunks (%d corrupt, %d repaired)\n",
				sc.Passes, sc.Records, sc.DamagedPartitions, sc.RepairedPartitions, sc.Chunks, sc.CorruptChunks, sc.RepairedChunks)
			ae := st.AntiEntropy
			fmt.Printf("anti-entropy: %d rounds (last %s, %.3fs, %d bytes), %d partition comparisons, %d differing, %d records pulled, %d pushed\n",
				ae.Rounds, ae.LastRound, ae.LastRoundSeconds, ae.LastRoundBytes, ae.PartitionsCompared, ae.PartitionsDiffering, ae.RecordsPulled, ae.RecordsPushed)
			cr := st.ChunkRepair
			fmt.Printf("chunk anti-entropy: %d passes (last %s, %d missing), %d chunks checked, %d missing, %d fetched (%d bytes), %d on no other node\n",
				cr.Passes, cr.LastPass, cr.LastMissing, cr.Checked, cr.Missing, cr.Fetched, cr.FetchedBytes, cr.Unavailable)
			return nil
		},
	}
	node := &cobra.Command{Use: "node", Short: "Change cluster membership"}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Take a node out of the cluster for good",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			_, err := call("admin.remove", []byte(args[0]))
			if err == nil {
				fmt.Printf("node %s removed from the layout; its data moves to the other nodes (if it is dead for good, run: ringstore admin node skip %s)\n", args[0], args[0])
			}
			return err
		},
	}
	skip := &cobra.Command{
		Use:   "skip ID",
		Short: "Let data moves finish without a removed node that is dead for good",
		Long: `A data move waits for every node of the layout versions it spans. A node
that died and was removed never answers, and the move would wait for it for
good. skip stops waiting for it; what it held is also on the other owners of
its partitions, which move it themselves. Only a removed node that is not
alive can be skipped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			_, err := call("admin.skip", []byte(args[0]))
			if err == nil {
				fmt.Printf("node %s skipped: data moves no longer wait for it\n", args[0])
			}
			return err
		},
	}
	node.AddCommand(remove, skip)
	key := &cobra.Command{Use: "key", Short: "Manage access keys (stored in the replicated index)"}
	create := &cobra.Command{
		Use:   "create [NAME]",
		Short: "Create an access key and print its secret (shown only once)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			b, err := call("admin.key.create", []byte(name))
			if err != nil {
				return err
			}
			var k keyInfo
			if err := json.Unmarshal(b, &k); err != nil {
				return err
			}
			fmt.Printf("access key id:     %s\nsecret access key: %s\n", k.ID, k.Secret)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List access keys",
		RunE: func(*cobra.Command, []string) error {
			b, err := call("admin.key.list", nil)
			if err != nil {
				return err
			}
			var keys []keyInfo
			if err := json.Unmarshal(b, &keys); err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tCREATED\tSTATE")
			for _, k := range keys {
				state := "active"
				if k.Revoked {
					state = "revoked"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Created, state)
			}
			return w.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Revoke an access key",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			_, err := call("admin.key.delete", []byte(args[0]))
			return err
		},
	}
	key.AddCommand(create, list, del)
	cmd.AddCommand(status, node, key)
	return cmd
}
