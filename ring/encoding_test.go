// Goal: layouts and assignments survive persistence and gossip unchanged,
// encodings are canonical, and no corrupt input crashes the decoder or is
// accepted as something else. Method: round trips of random values,
// byte-equality across member orders, every truncation and many single
// byte corruptions of valid encodings, and fuzz targets seeded with valid
// encodings (go test -fuzz FuzzUnmarshalLayout to explore further).

package ring

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

func randomLayout(r *rand.Rand) Layout {
	ws := make([]uint32, 1+r.IntN(10))
	for i := range ws {
		ws[i] = 1 + r.Uint32N(1<<31)
	}
	l := layoutOf(16<<r.IntN(8), 1+r.IntN(4), ws, "eu-1", "eu-2", "")
	l.Version = r.Uint64()
	return l
}

func TestLayoutRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for range 50 {
		l := randomLayout(r)
		b, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := shuffled(l, r).MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatal("encoding depends on member order")
		}
		var got Layout
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		want := l.Clone()
		want.Members = l.sortedMembers()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
		// JSON works too, for people and tools.
		j, _ := json.Marshal(l)
		var lj Layout
		if err := json.Unmarshal(j, &lj); err != nil || !reflect.DeepEqual(lj, l) {
			t.Fatalf("JSON round trip: %v, %+v", err, lj)
		}
	}
	if _, err := (Layout{Partitions: 3}).MarshalBinary(); err == nil {
		t.Error("marshalled an invalid layout")
	}
}

func TestAssignmentRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for range 30 {
		l := randomLayout(r)
		a := Assign(nil, l)
		b, _ := a.MarshalBinary()
		var got Assignment
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, a) || got.Hash() != a.Hash() {
			t.Fatal("assignment round trip differs")
		}
		b2, _ := got.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatal("re-encoding differs")
		}
	}
	// The hash covers the table, not the version.
	l := layoutOf(64, 2, equal(3, 1))
	a := Assign(nil, l)
	l.Version++
	if b := Assign(nil, l); b.Hash() != a.Hash() {
		t.Error("hash depends on the version")
	}
	if b := Assign(nil, l.WithMember(Member{ID: "x", Weight: 1})); b.Hash() == a.Hash() {
		t.Error("different tables, same hash")
	}
}

func TestCorruptEncodings(t *testing.T) {
	l := layoutOf(64, 2, []uint32{1, 2, 3}, "a", "b")
	lb, _ := l.MarshalBinary()
	ab, _ := Assign(nil, l).MarshalBinary()
	for name, data := range map[string][]byte{"layout": lb, "assignment": ab} {
		decode := func(b []byte) error {
			if name == "layout" {
				var x Layout
				return x.UnmarshalBinary(b)
			}
			var x Assignment
			return x.UnmarshalBinary(b)
		}
		for n := range len(data) {
			if decode(data[:n]) == nil {
				t.Errorf("%s: truncation to %d bytes accepted", name, n)
			}
		}
		if decode(append(bytes.Clone(data), 0)) == nil {
			t.Errorf("%s: trailing byte accepted", name)
		}
		r := rand.New(rand.NewPCG(5, 5))
		for range 2000 {
			b := bytes.Clone(data)
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			_ = decode(b) // must not panic; may or may not be valid
		}
	}
	var a Assignment
	if a.UnmarshalBinary(lb) == nil {
		t.Error("layout bytes decoded as an assignment")
	}
}

func FuzzUnmarshalLayout(f *testing.F) {
	b, _ := layoutOf(16, 2, []uint32{1, 2}, "a").MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var l Layout
		if l.UnmarshalBinary(data) != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("decoded an invalid layout: %v", err)
		}
		again, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var l2 Layout
		if err := l2.UnmarshalBinary(again); err != nil || !reflect.DeepEqual(l, l2) {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}

func FuzzUnmarshalAssignment(f *testing.F) {
	b, _ := Assign(nil, layoutOf(16, 2, []uint32{1, 2, 3}, "a")).MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Assignment
		if a.UnmarshalBinary(data) != nil {
			return
		}
		for p := range a.Partitions() {
			if len(a.Owners(Partition(p))) != a.Replicas() {
				t.Fatal("ragged table")
			}
		}
		again, _ := a.MarshalBinary()
		var a2 Assignment
		if err := a2.UnmarshalBinary(again); err != nil || a2.Hash() != a.Hash() {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}
