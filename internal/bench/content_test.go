// Goal: object content is a pure function of (seed, key, size): the same
// triple always yields the same bytes however they are read, any other key,
// size or seed yields different bytes, and the Verifier catches a single
// flipped byte, a short body and a long one.
// Method: generate streams with random read sizes and compare them with
// one-shot reads; corrupt copies on purpose and check the reported offset.
package bench

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

func readAll(t *testing.T, seed uint64, key string, size int64, rng *rand.Rand) []byte {
	t.Helper()
	c := NewContent(seed, key, size)
	var out []byte
	buf := make([]byte, 70_000)
	for {
		n := 1 + rng.IntN(len(buf))
		if rng.IntN(4) == 0 {
			n = 1 + rng.IntN(9) // odd tiny reads exercise the partial-word path
		}
		k, err := c.Read(buf[:n])
		out = append(out, buf[:k]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestContentDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int64{0, 1, 7, 8, 9, 4096, 65537, 1<<20 + 3} {
		a := readAll(t, 42, "p/obj-0000000001", size, rng)
		b := readAll(t, 42, "p/obj-0000000001", size, rng)
		if int64(len(a)) != size {
			t.Fatalf("size %d: read %d bytes", size, len(a))
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("size %d: two reads of the same object differ", size)
		}
		whole := make([]byte, size)
		if _, err := io.ReadFull(NewContent(42, "p/obj-0000000001", size), whole); err != nil && size > 0 {
			t.Fatal(err)
		}
		if !bytes.Equal(a, whole) {
			t.Fatalf("size %d: chunked and one-shot reads differ", size)
		}
	}
}

func TestContentDiffers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const size = 4096
	base := readAll(t, 42, "p/obj-0000000001", size, rng)
	others := map[string][]byte{
		"other key":  readAll(t, 42, "p/obj-0000000002", size, rng),
		"other seed": readAll(t, 43, "p/obj-0000000001", size, rng),
		// A different size must not be a prefix or extension of the
		// same stream, or a truncated rewrite would verify.
		"other size": readAll(t, 42, "p/obj-0000000001", size+8, rng)[:size],
	}
	for name, o := range others {
		same := 0
		for i := range base {
			if base[i] == o[i] {
				same++
			}
		}
		// Independent random streams agree on about 1/256 of bytes.
		if same > size/64 {
			t.Errorf("%s: %d of %d bytes equal, want an unrelated stream", name, same, size)
		}
	}
	// The stream must not repeat with the server's 1 MiB chunk size, or a
	// swapped chunk would go unnoticed.
	big := readAll(t, 7, "k", 2<<20+64, rng)
	if bytes.Equal(big[:64], big[1<<20:1<<20+64]) {
		t.Error("content repeats at 1 MiB")
	}
}

func TestVerifier(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const key, seed, size = "p/obj-0000000009", 99, 200_000
	good := readAll(t, seed, key, size, rng)
	v := NewVerifier(64 << 10)

	feed := func(b []byte) (bool, int64) {
		v.Reset(seed, key, size)
		for len(b) > 0 {
			n := min(len(b), 1+rng.IntN(100_000))
			_, _ = v.Write(b[:n])
			b = b[n:]
		}
		return v.Result()
	}
	if ok, _ := feed(good); !ok {
		t.Fatal("correct content rejected")
	}
	for _, at := range []int{0, 1, 4095, 65536, size - 1} {
		bad := bytes.Clone(good)
		bad[at] ^= 0x01
		if ok, off := feed(bad); ok || off != int64(at) {
			t.Errorf("flip at %d: ok=%v offset=%d", at, ok, off)
		}
	}
	if ok, _ := feed(good[:size-1]); ok {
		t.Error("short content accepted")
	}
	if ok, _ := feed(append(bytes.Clone(good), 0)); ok {
		t.Error("long content accepted")
	}
	other := readAll(t, seed, "p/obj-0000000010", size, rng)
	if ok, _ := feed(other); ok {
		t.Error("another key's content accepted")
	}
}
