package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// freeAddr returns a loopback address free for TCP and UDP (gossip needs
// both on one port).
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatal("no free port")
	return ""
}

// TestServerBootstrapExpectStarts starts three servers in this process as
// the README does (--bootstrap-expect 3, the joiners naming the first),
// each after a random delay, a few times over: every one must come up and
// stop cleanly. A server that reads its placement before the first layout
// reached it panics and takes the test with it.
func TestServerBootstrapExpectStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	// Given keys, the servers do not generate and print their own.
	t.Setenv("RINGSTORE_ACCESS_KEY_ID", "RSTESTSTARTUPKEY")
	t.Setenv("RINGSTORE_SECRET_ACCESS_KEY", "startup-test-secret")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for round := range 3 {
		t.Run(fmt.Sprintf("round=%d", round), func(t *testing.T) {
			var delays []time.Duration
			for range 3 {
				delays = append(delays, time.Duration(r.IntN(9))*50*time.Millisecond)
			}
			t.Logf("start delays %v", delays)
			startCluster(t, delays)
		})
		if t.Failed() {
			return
		}
	}
}

// testClusterSecret is 32 random bytes in base64.
const testClusterSecret = "jZX7fdNe7Yf2L8/4Y1WcvdS+y81nCpOv3l6hlbj35Q0="

// TestServerRefusesWeakSecrets: a cluster node without a secret, or with
// one that cannot carry 32 random bytes, does not start, and says how to
// make a good one.
func TestServerRefusesWeakSecrets(t *testing.T) {
	for _, secret := range []string{"", "integration-cluster-secret", "0123456789abcdef0123456789abcdef"} {
		cmd := serverCmd()
		cmd.SetArgs([]string{"--data", filepath.Join(t.TempDir(), "data"), "--s3-addr", "127.0.0.1:0",
			"--rpc-addr", freeAddr(t), "--gossip-addr", freeAddr(t), "--cluster-secret", secret, "--log-level", "error"})
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Errorf("secret %q: %v; want a refusal saying how to make one", secret, err)
		}
	}
}

func startCluster(t *testing.T, delays []time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gossip := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	s3 := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	errs := make([]error, len(delays))
	done := make([]chan struct{}, len(delays))
	var wg sync.WaitGroup
	for i, d := range delays {
		args := []string{
			"--data", filepath.Join(t.TempDir(), "data"), "--s3-addr", s3[i], "--rpc-addr", freeAddr(t), "--gossip-addr", gossip[i],
			"--zone", fmt.Sprintf("z%d", i), "--bootstrap-expect", "3", "--partitions", "16",
			"--index-memory", "16MiB", "--settle-delay", "200ms", "--log-level", "error",
			"--cluster-secret", testClusterSecret,
		}
		if i > 0 {
			args = append(args, "--join", gossip[0])
		}
		done[i] = make(chan struct{})
		wg.Go(func() {
			defer close(done[i])
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
			cmd := serverCmd()
			cmd.SetArgs(args)
			errs[i] = cmd.ExecuteContext(ctx)
		})
	}
	// Not a timing check: a cluster that never forms is a failure to
	// report, not a reason to hang the whole run.
	giveUp := time.After(2 * time.Minute)
	for i, addr := range s3 {
		// The S3 listener opens once the node has its placement.
	wait:
		for {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			select {
			case <-done[i]:
				break wait
			case <-giveUp:
				t.Errorf("node %d did not start", i)
				break wait
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	cancel()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
}
