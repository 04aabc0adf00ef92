// http_test.go checks the authenticated HTTP transport: calls between
// nodes sharing the secret work; a node with another secret, a tampered
// body, a stale timestamp or a misdirected request is refused; remote
// handler errors come back as RemoteError.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func pair(t *testing.T, secretA, secretB string) (*HTTP, *HTTP) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addrs := map[string]string{}
	resolve := func(n string) (string, bool) { a, ok := addrs[n]; return a, ok }
	mk := func(self, secret string) *HTTP {
		mux := NewMux()
		mux.Handle("echo", func(_ context.Context, from string, body []byte) ([]byte, error) {
			return []byte(from + ":" + string(body)), nil
		})
		mux.Handle("fail", func(context.Context, string, []byte) ([]byte, error) { return nil, errors.New("boom") })
		h := NewHTTP(self, []byte(secret), resolve, mux, log)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		addrs[self] = strings.TrimPrefix(srv.URL, "http://")
		return h
	}
	return mk("a", secretA), mk("b", secretB)
}

func TestCallRoundTrip(t *testing.T) {
	a, _ := pair(t, "s3cret", "s3cret")
	got, err := a.Call(context.Background(), "b", "echo", []byte("hi"))
	if err != nil || string(got) != "a:hi" {
		t.Fatalf("Call = %q, %v; want a:hi", got, err)
	}
	_, err = a.Call(context.Background(), "b", "fail", nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "boom" {
		t.Fatalf("remote failure = %v; want RemoteError boom", err)
	}
	if _, err := a.Call(context.Background(), "b", "nope", nil); !errors.As(err, &re) {
		t.Fatalf("unknown service = %v", err)
	}
}

func TestWrongSecretRefused(t *testing.T) {
	a, _ := pair(t, "one", "two")
	if _, err := a.Call(context.Background(), "b", "echo", []byte("x")); err == nil {
		t.Fatal("a node with another secret was served")
	}
}

func TestForgedRequestsRefused(t *testing.T) {
	_, b := pair(t, "k", "k")
	srv := httptest.NewServer(b)
	defer srv.Close()
	send := func(mutate func(r *http.Request, body *[]byte)) int {
		body := []byte("payload")
		now := time.Now().UnixNano()
		r, _ := http.NewRequest("POST", srv.URL+"/rpc/echo", nil)
		r.Header.Set(hdrFrom, "a")
		r.Header.Set(hdrTo, "b")
		r.Header.Set(hdrTime, fmt.Sprint(now))
		r.Header.Set(hdrMac, mac([]byte("k"), "a", "b", "echo", 0, now, body))
		mutate(r, &body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		r.ContentLength = int64(len(body))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send(func(*http.Request, *[]byte) {}); c != 200 {
		t.Fatalf("valid request = %d", c)
	}
	if c := send(func(_ *http.Request, b *[]byte) { *b = []byte("tampered") }); c != 401 {
		t.Fatalf("tampered body = %d; want 401", c)
	}
	if c := send(func(r *http.Request, _ *[]byte) { r.Header.Set(hdrFrom, "c") }); c != 401 {
		t.Fatalf("forged sender = %d; want 401", c)
	}
	if c := send(func(r *http.Request, _ *[]byte) {
		old := time.Now().Add(-time.Hour).UnixNano()
		r.Header.Set(hdrTime, fmt.Sprint(old))
		r.Header.Set(hdrMac, mac([]byte("k"), "a", "b", "echo", 0, old, []byte("payload")))
	}); c != 401 {
		t.Fatalf("stale message = %d; want 401", c)
	}
	if c := send(func(r *http.Request, _ *[]byte) { r.Header.Set(hdrTo, "z") }); c != http.StatusMisdirectedRequest {
		t.Fatalf("misdirected = %d", c)
	}
}

func TestCheckListenAddr(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:1": true, "localhost:1": true, "[::1]:1": true, "0.0.0.0:1": false, "10.0.0.5:1": false} {
		if err := CheckListenAddr(addr, nil); (err == nil) != ok {
			t.Errorf("CheckListenAddr(%s, no secret) = %v", addr, err)
		}
	}
	if err := CheckListenAddr("0.0.0.0:1", []byte("x")); err != nil {
		t.Errorf("with a secret: %v", err)
	}
}
