// FuzzReadFrame feeds arbitrary bytes to the reading side of a stream
// connection, as they come out of TLS. Goal: no input makes the frame
// reader panic, allocate far ahead of the bytes it was given, or read a
// frame that is not exactly the bytes it consumed. Method: the seeds are
// frames written by a real writer; every frame read must encode back to
// the bytes it was read from, and its buffer is at most twice its input or
// frameAllocStep.
package rpc

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
)

var fuzzFrames = []frame{
	{id: 1, kind: kindRequest, service: "index", payload: []byte("merge me")},
	{id: 2, kind: kindRequest, service: "blobs", payload: bytes.Repeat([]byte{0xab}, 5000)},
	{id: 3, kind: kindRequest, service: "", payload: nil},
	{id: 9, kind: kindError, service: "x", payload: []byte("boom")},
}

// writeFrames writes frames as one side of a connection would.
func writeFrames(t testing.TB, frames []frame) []byte {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	// The frames go to w; the connection only takes write deadlines.
	c, peer := net.Pipe()
	defer c.Close()
	defer peer.Close()
	sc := newStreamConn(c, nil, w, "server", defaultWriteTimeout)
	for _, f := range frames {
		if err := sc.writeFrame(f, false); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func FuzzReadFrame(f *testing.F) {
	all := writeFrames(f, fuzzFrames)
	f.Add(all)
	f.Add(all[:len(all)-1])
	f.Add(writeFrames(f, fuzzFrames[:1]))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0x05, 0x00, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &countingReader{r: bytes.NewReader(data)}
		sc := newStreamConn(nil, bufio.NewReaderSize(in, 16), nil, "client", defaultWriteTimeout)
		budget := newByteBudget(maxServingBytes)
		for consumed := 0; ; {
			got, err := sc.readFrame(budget)
			if err != nil {
				return
			}
			if cap(got.payload) > max(2*len(data), frameAllocStep) {
				t.Fatalf("a %d-byte input made a %d-byte buffer", len(data), cap(got.payload))
			}
			budget.release(got.held)
			again := writeFrames(t, []frame{got})
			if !bytes.Equal(again, data[consumed:consumed+len(again)]) {
				t.Fatalf("frame %+v read from bytes it does not encode to", got)
			}
			consumed += len(again)
		}
	})
}

// TestReadFrameSeeds runs the seeds in the normal test run: the frames
// read back in order, and a truncated stream yields the frames before the
// cut.
func TestReadFrameSeeds(t *testing.T) {
	all := writeFrames(t, fuzzFrames)
	for _, cut := range []int{len(all), len(all) - 1} {
		sc := newStreamConn(nil, bufio.NewReader(bytes.NewReader(all[:cut])), nil, "client", defaultWriteTimeout)
		n := 0
		for ; ; n++ {
			f, err := sc.readFrame(nil)
			if err != nil {
				break
			}
			w := fuzzFrames[n]
			if f.id != w.id || f.kind != w.kind || f.service != w.service || !bytes.Equal(f.payload, w.payload) {
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
