// FuzzReadFrame feeds arbitrary bytes to the reading side of a stream
// connection after its handshake. Goal: no input makes the frame reader
// panic, allocate past its length limit, or accept a frame the key's
// holder did not write there. Method: the seeds are frames sealed by a real
// writer; any frame the reader opens must be, field for field, the frame
// the writer sealed at that position.
package rpc

import (
	"bufio"
	"bytes"
	"net"
	"testing"
)

var fuzzKey = bytes.Repeat([]byte{7}, 32)

var fuzzFrames = []frame{
	{id: 1, kind: kindRequest, service: "index", payload: []byte("merge me")},
	{id: 2, kind: kindRequest, service: "blobs", payload: bytes.Repeat([]byte{0xab}, 5000)},
	{id: 3, kind: kindRequest, service: "", payload: nil},
	{id: 9, kind: kindError, service: "x", payload: []byte("boom")},
}

// sealFrames writes frames as the client side of a connection would.
func sealFrames(t testing.TB, frames []frame) []byte {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	// The frames go to w; the connection only takes write deadlines.
	c, peer := net.Pipe()
	defer c.Close()
	defer peer.Close()
	sc, err := newStreamConn(c, nil, w, fuzzKey, 'c', "server", defaultWriteTimeout)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := sc.writeFrame(f, false); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

func FuzzReadFrame(f *testing.F) {
	all := sealFrames(f, fuzzFrames)
	f.Add(all)
	f.Add(all[:len(all)-1])
	f.Add(sealFrames(f, fuzzFrames[:1]))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := newStreamConn(nil, bufio.NewReader(bytes.NewReader(data)), nil, fuzzKey, 's', "client", defaultWriteTimeout)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			got, err := sc.readFrame()
			if err != nil {
				return
			}
			if i >= len(fuzzFrames) {
				t.Fatalf("frame %d opened, but only %d were sealed", i, len(fuzzFrames))
			}
			want := fuzzFrames[i]
			if got.id != want.id || got.kind != want.kind || got.service != want.service || !bytes.Equal(got.payload, want.payload) {
				t.Fatalf("frame %d opened as %+v, sealed as %+v", i, got, want)
			}
		}
	})
}

// TestReadFrameSeeds runs the seeds in the normal test run: the sealed
// frames read back in order, and a truncated stream yields the frames
// before the cut.
func TestReadFrameSeeds(t *testing.T) {
	all := sealFrames(t, fuzzFrames)
	for _, cut := range []int{len(all), len(all) - 1} {
		sc, _ := newStreamConn(nil, bufio.NewReader(bytes.NewReader(all[:cut])), nil, fuzzKey, 's', "client", defaultWriteTimeout)
		n := 0
		for ; ; n++ {
			f, err := sc.readFrame()
			if err != nil {
				break
			}
			if f.id != fuzzFrames[n].id || !bytes.Equal(f.payload, fuzzFrames[n].payload) {
				t.Fatalf("frame %d read back as %+v", n, f)
			}
		}
		want := len(fuzzFrames)
		if cut < len(all) {
			want--
		}
		if n != want {
			t.Fatalf("read %d frames of a %d-byte stream, want %d", n, cut, want)
		}
	}
}
