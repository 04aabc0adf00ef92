package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/gateway"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/gc"
	"github.com/ringstore/ringstore/ring"
)

type serverOptions struct {
	data, s3Addr, domain, region, logLevel string
	gcInterval, gcGrace, uploadExpiry      time.Duration
}

func serverCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a ringstore node",
		Long: `Run a ringstore node. Started with no flags it is a complete single-node
S3 store: data under ./data, S3 on 127.0.0.1:9000. Every flag can also be
set by an environment variable (shown in brackets).`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", envOr("RINGSTORE_DATA", "./data"), "data directory [RINGSTORE_DATA]")
	f.StringVar(&o.s3Addr, "s3-addr", envOr("RINGSTORE_S3_ADDR", "127.0.0.1:9000"), "S3 API listen address [RINGSTORE_S3_ADDR]")
	f.StringVar(&o.domain, "domain", envOr("RINGSTORE_DOMAIN", ""), "domain for virtual-hosted-style requests (bucket.DOMAIN) [RINGSTORE_DOMAIN]")
	f.StringVar(&o.region, "region", envOr("RINGSTORE_REGION", "us-east-1"), "region name [RINGSTORE_REGION]")
	f.StringVar(&o.logLevel, "log-level", envOr("RINGSTORE_LOG_LEVEL", "info"), "debug, info, warn or error [RINGSTORE_LOG_LEVEL]")
	f.DurationVar(&o.gcInterval, "gc-interval", envDuration("RINGSTORE_GC_INTERVAL", time.Hour), "how often unreferenced chunks are collected [RINGSTORE_GC_INTERVAL]")
	f.DurationVar(&o.gcGrace, "gc-grace", envDuration("RINGSTORE_GC_GRACE", 24*time.Hour), "how long an unreferenced chunk or an unfinished write is kept [RINGSTORE_GC_GRACE]")
	f.DurationVar(&o.uploadExpiry, "upload-expiry", envDuration("RINGSTORE_UPLOAD_EXPIRY", 7*24*time.Hour), "multipart uploads older than this are aborted and reclaimed [RINGSTORE_UPLOAD_EXPIRY]")
	return cmd
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func runServer(ctx context.Context, o serverOptions) error {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	if err := os.MkdirAll(o.data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	store, err := index.OpenStore(filepath.Join(o.data, "index"), index.StoreOptions{Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close index", "err", err)
		}
	}()
	chunks, err := blobs.Open(filepath.Join(o.data, "blobs"))
	if err != nil {
		return err
	}
	nodeID, rg, err := loadPlacement(store, o.s3Addr)
	if err != nil {
		return err
	}
	creds, generated, err := loadCredentials(o.data)
	if err != nil {
		return err
	}
	placement := index.RingPlacement(rg)
	ix := index.New(index.Config{
		Self:      string(nodeID),
		Placement: func() index.Placement { return placement },
		Store:     store,
		Clock:     index.NewClock(nil),
		N:         1,
		Logger:    log,
	})
	verifier := &auth.Verifier{
		Region: o.region,
		Lookup: func(id string) (string, bool) {
			if id == creds.AccessKeyID {
				return creds.SecretAccessKey, true
			}
			return "", false
		},
	}
	chunkPlacement := blobs.RingPlacement(rg)
	replicated := blobs.NewReplicated(blobs.ReplicatedConfig{
		Self: string(nodeID), Local: chunks, Placement: func() blobs.Placement { return chunkPlacement }, Logger: log,
	}, nil)
	gw := gateway.New(gateway.Config{
		Region: o.region, Domain: o.domain, Index: ix, Chunks: replicated, Auth: verifier, Logger: log,
	})

	ln, err := net.Listen("tcp", o.s3Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.s3Addr, err)
	}
	srv := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	endpoint := "http://" + ln.Addr().String()
	printBanner(endpoint, o.region, creds, generated, o.data)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	collector := gc.New(gc.Config{Index: ix, Blobs: chunks, Grace: o.gcGrace, UploadExpiry: o.uploadExpiry, Logger: log})
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		collector.Run(ctx, o.gcInterval)
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("ringstore ready", "endpoint", endpoint, "node", nodeID, "data", o.data)
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	<-gcDone
	log.Info("stopped")
	return nil
}

// loadPlacement returns this node's id and ring, creating a one-node
// layout on first start.
func loadPlacement(store *index.Store, addr string) (ring.NodeID, *ring.Ring, error) {
	idb, err := store.GetMeta("node-id")
	if err != nil {
		return "", nil, err
	}
	if idb == nil {
		var b [8]byte
		_, _ = rand.Read(b[:])
		idb = []byte(hex.EncodeToString(b[:]))
		if err := store.SetMeta("node-id", idb); err != nil {
			return "", nil, err
		}
	}
	id := ring.NodeID(idb)
	lb, err := store.GetMeta("layout")
	if err != nil {
		return "", nil, err
	}
	var layout ring.Layout
	if lb == nil {
		layout = ring.SingleNode(id, addr, ring.DefaultPartitions)
		if lb, err = layout.MarshalBinary(); err != nil {
			return "", nil, err
		}
		if err := store.SetMeta("layout", lb); err != nil {
			return "", nil, err
		}
	} else if err := layout.UnmarshalBinary(lb); err != nil {
		return "", nil, fmt.Errorf("stored layout: %w", err)
	}
	rg, err := ring.NewRing(layout, ring.Assign(nil, layout))
	if err != nil {
		return "", nil, fmt.Errorf("ring: %w", err)
	}
	return id, rg, nil
}

type credentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// loadCredentials returns the root credentials: from the environment, else
// from the data directory, else generated now and saved there (mode 0600).
func loadCredentials(dir string) (credentials, bool, error) {
	id, secret := os.Getenv("RINGSTORE_ACCESS_KEY_ID"), os.Getenv("RINGSTORE_SECRET_ACCESS_KEY")
	if id != "" || secret != "" {
		if id == "" || secret == "" {
			return credentials{}, false, errors.New("set both RINGSTORE_ACCESS_KEY_ID and RINGSTORE_SECRET_ACCESS_KEY, or neither")
		}
		return credentials{id, secret}, false, nil
	}
	path := filepath.Join(dir, "credentials.json")
	b, err := os.ReadFile(path)
	if err == nil {
		var c credentials
		if err := json.Unmarshal(b, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return credentials{}, false, fmt.Errorf("%s: not valid credentials", path)
		}
		return c, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return credentials{}, false, fmt.Errorf("read credentials: %w", err)
	}
	c := credentials{AccessKeyID: "RS" + randomString(18, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), SecretAccessKey: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
	b, _ = json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return credentials{}, false, fmt.Errorf("write credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return credentials{}, false, fmt.Errorf("write credentials: %w", err)
	}
	return c, true, nil
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func printBanner(endpoint, region string, c credentials, generated bool, data string) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "ringstore S3 endpoint: %s\n", endpoint)
	fmt.Fprintf(&sb, "  region:            %s\n", region)
	fmt.Fprintf(&sb, "  access key id:     %s\n", c.AccessKeyID)
	fmt.Fprintf(&sb, "  secret access key: %s\n", c.SecretAccessKey)
	if generated {
		fmt.Fprintf(&sb, "  (generated and saved in %s)\n", filepath.Join(data, "credentials.json"))
	}
	fmt.Fprintf(&sb, "try:\n  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s aws --endpoint-url %s s3 ls\n",
		c.AccessKeyID, c.SecretAccessKey, region, endpoint)
	fmt.Print(sb.String())
}
