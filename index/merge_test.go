// merge_test.go checks the CRDT laws of every record type: merge is
// commutative, associative and idempotent, and encodes canonically, over
// records drawn from a seeded random source that makes collisions (same
// version id, same write, same timestamps) common.
package index

import (
	"time"

	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

type gen struct{ r *rand.Rand }

func (g gen) pick(n int) int { return g.r.IntN(n) }

func (g gen) ts() Timestamp { return Timestamp(1 + g.r.IntN(4)) }

func (g gen) writeID() WriteID { return WriteID{byte(g.r.IntN(3))} }

func (g gen) kvs() []KV {
	n := g.pick(3)
	var out []KV
	for i := 0; i < n; i++ {
		out = append(out, KV{Name: fmt.Sprintf("k%d", i), Value: fmt.Sprintf("v%d", g.pick(3))})
	}
	return out
}

func (g gen) version() Version {
	v := Version{
		ID:        []string{"null", "a", "b"}[g.pick(3)],
		Timestamp: g.ts(),
		WriteID:   g.writeID(),
	}
	switch g.pick(4) {
	case 0:
		v.Tombstone = true
		return v
	case 1:
		v.DeleteMarker = true
	default:
		v.Size = int64(g.pick(100))
		v.ETag = fmt.Sprintf("%x", g.pick(4))
		v.Headers = g.kvs()
		v.Inline = []byte(v.ETag)
		if g.pick(2) == 0 {
			v.Chunks = []ChunkRef{{ID: BlobID{byte(g.pick(4))}, Size: uint32(g.pick(9))}}
		}
		v.Encryption = g.encryption()
	}
	v.Tags, v.TagsTS = g.kvs(), g.ts()
	return v
}

// encryption draws no encryption, an SSE-S3 or an SSE-C record, from few
// values so that equal and nearly equal ones meet.
func (g gen) encryption() *Encryption {
	switch g.pick(3) {
	case 0:
		return nil
	case 1:
		return &Encryption{Kind: EncryptionS3, KeyID: []string{"k1", "k2"}[g.pick(2)], DataKey: []byte{byte(g.pick(2)), 1}}
	}
	return &Encryption{Kind: EncryptionC, Salt: []byte{byte(g.pick(2))}, KeyCheck: []byte{byte(g.pick(2)), 2}, DataKey: []byte{byte(g.pick(2)), 3}}
}

func (g gen) object() *Object {
	o := &Object{}
	for i := g.pick(4); i > 0; i-- {
		o = MergeObject(o, &Object{Versions: []Version{g.version()}})
	}
	return o
}

func (g gen) bucket() *Bucket {
	b := &Bucket{Name: "b", ID: BucketID{byte(g.pick(2))}, Created: g.ts(), Owner: "o", Shards: 8}
	if g.pick(3) == 0 {
		b.Deleted = g.ts()
	}
	for i := g.pick(3); i > 0; i-- {
		b.Configs = mergeConfigs(b.Configs, []BucketConfig{{Name: []string{"versioning", "cors"}[g.pick(2)], Timestamp: g.ts(), Value: []byte{byte(g.pick(3))}}})
	}
	return b
}

func (g gen) ref() *Ref {
	r := &Ref{Kind: RefVersion, Bucket: BucketID{1}, Key: "k", WriteID: WriteID{2}, Created: 5}
	if g.pick(2) == 0 {
		r.Tombstone = g.ts()
	}
	return r
}

func (g gen) upload() *Upload {
	u := &Upload{Key: "k", UploadID: "u", Initiated: 3, Owner: "o", ChecksumAlgorithm: []string{"", "CRC32"}[g.pick(2)], Encryption: g.encryption()}
	if g.pick(2) == 0 {
		u.Done = g.ts()
	}
	return u
}

func (g gen) part() *Part {
	return &Part{Number: 1, Timestamp: g.ts(), WriteID: g.writeID(), Size: int64(g.pick(3)), ETag: fmt.Sprint(g.pick(2))}
}

func (g gen) key() *AccessKey {
	k := &AccessKey{ID: "AK", Secret: []string{"s1", "s2"}[g.pick(2)], Created: 1}
	if g.pick(2) == 0 {
		k.Deleted = g.ts()
	}
	return k
}

// lawCheck checks the three laws for one table on encoded records.
func lawCheck(t *testing.T, seed uint64, tbl Table, a, b, c []byte) {
	t.Helper()
	m := func(x, y []byte) []byte {
		out, err := MergeEncoded(tbl, x, y)
		if err != nil {
			t.Fatalf("seed %d: merge: %v", seed, err)
		}
		return out
	}
	if ab, ba := m(a, b), m(b, a); !bytes.Equal(ab, ba) {
		t.Fatalf("seed %d: %v merge not commutative:\n a=%x\n b=%x\n ab=%x\n ba=%x", seed, tbl, a, b, ab, ba)
	}
	if l, r := m(m(a, b), c), m(a, m(b, c)); !bytes.Equal(l, r) {
		t.Fatalf("seed %d: %v merge not associative", seed, tbl)
	}
	ca := m(a, a)
	if !bytes.Equal(m(ca, ca), ca) || !bytes.Equal(m(ca, a), ca) {
		t.Fatalf("seed %d: %v merge not idempotent", seed, tbl)
	}
}

func TestMergeLaws(t *testing.T) {
	for seed := uint64(0); seed < 3000; seed++ {
		g := gen{rand.New(rand.NewPCG(seed, 1))}
		lawCheck(t, seed, TableObjects, EncodeObject(g.object()), EncodeObject(g.object()), EncodeObject(g.object()))
		lawCheck(t, seed, TableBuckets, EncodeBucket(g.bucket()), EncodeBucket(g.bucket()), EncodeBucket(g.bucket()))
		lawCheck(t, seed, TableRefs, EncodeRef(g.ref()), EncodeRef(g.ref()), EncodeRef(g.ref()))
		lawCheck(t, seed, TableUploads, EncodeUpload(g.upload()), EncodeUpload(g.upload()), EncodeUpload(g.upload()))
		lawCheck(t, seed, TableParts, EncodePart(g.part()), EncodePart(g.part()), EncodePart(g.part()))
		lawCheck(t, seed, TableKeys, EncodeAccessKey(g.key()), EncodeAccessKey(g.key()), EncodeAccessKey(g.key()))
	}
}

// TestMergeObjectSemantics pins the meaning of the object merge, beyond the
// laws: the newer write of a slot wins, a later tombstone deletes, and a
// tag update of the same write survives a merge with the untagged copy.
func TestMergeObjectSemantics(t *testing.T) {
	old := Version{ID: "null", Timestamp: 10, WriteID: WriteID{1}, ETag: "old"}
	neu := Version{ID: "null", Timestamp: 20, WriteID: WriteID{2}, ETag: "new"}
	got := MergeObject(&Object{Versions: []Version{neu}}, &Object{Versions: []Version{old}})
	if l := got.Latest(); l == nil || l.ETag != "new" {
		t.Fatalf("latest = %+v; want the newer write", l)
	}
	tomb := Version{ID: "null", Timestamp: 30, WriteID: WriteID{3}, Tombstone: true}
	got = MergeObject(got, &Object{Versions: []Version{tomb}})
	if l := got.Latest(); l != nil {
		t.Fatalf("latest after tombstone = %+v; want none", l)
	}
	// A stale write arriving after the tombstone stays deleted.
	got = MergeObject(got, &Object{Versions: []Version{neu}})
	if l := got.Latest(); l != nil {
		t.Fatalf("stale write resurrected the key: %+v", l)
	}
	tagged := neu
	tagged.Tags, tagged.TagsTS = []KV{{"a", "b"}}, 25
	got = MergeObject(&Object{Versions: []Version{neu}}, &Object{Versions: []Version{tagged}})
	if l := got.Latest(); len(l.Tags) != 1 {
		t.Fatalf("tags lost in merge: %+v", l)
	}
	// Versions of different ids coexist; the newest is current.
	a := Version{ID: "a", Timestamp: 5, WriteID: WriteID{4}}
	b := Version{ID: "b", Timestamp: 6, WriteID: WriteID{5}, DeleteMarker: true}
	got = MergeObject(&Object{Versions: []Version{a}}, &Object{Versions: []Version{b}})
	if l := got.Latest(); l.ID != "b" || !l.DeleteMarker {
		t.Fatalf("latest = %+v; want delete marker b", l)
	}
	if live := got.Live(); len(live) != 2 || live[0].ID != "b" {
		t.Fatalf("live = %v; want b then a", live)
	}
}

// The shortcut canonical takes for object records must give exactly what
// merging the record with itself gives, whatever order its versions come
// in.
func TestCanonicalObjectShortcut(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(11, 12))}
	for i := 0; i < 2000; i++ {
		o := g.object()
		if i%3 == 0 && len(o.Versions) > 1 {
			// Out of order, as a faulty peer might send it.
			o.Versions[0], o.Versions[len(o.Versions)-1] = o.Versions[len(o.Versions)-1], o.Versions[0]
		}
		enc := EncodeObject(o)
		want, err := MergeEncoded(TableObjects, enc, enc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := canonical(TableObjects, enc)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("canonical(%+v) = %x, %v; merging with itself gives %x", o, got, err, want)
		}
	}
}

func TestMergeBucketIncarnations(t *testing.T) {
	first := &Bucket{Name: "x", ID: BucketID{1}, Created: 10}
	deleted := &Bucket{Name: "x", ID: BucketID{1}, Created: 10, Deleted: 20}
	again := &Bucket{Name: "x", ID: BucketID{2}, Created: 30}
	got := MergeBucket(MergeBucket(first, again), deleted)
	if !got.Live() || got.ID != (BucketID{2}) {
		t.Fatalf("got %+v; want the live second incarnation", got)
	}
	got = MergeBucket(first, deleted)
	if got.Live() {
		t.Fatalf("delete of an incarnation did not stick: %+v", got)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for seed := uint64(0); seed < 500; seed++ {
		g := gen{rand.New(rand.NewPCG(seed, 2))}
		o := g.object()
		enc := EncodeObject(o)
		dec, err := DecodeObject(enc)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !bytes.Equal(EncodeObject(dec), enc) {
			t.Fatalf("seed %d: object round trip changed the encoding", seed)
		}
	}
	big := &Version{ID: "v", Timestamp: 1, Headers: []KV{{"x-amz-meta-a", string(make([]byte, 300))}}}
	for i := 0; i < 200; i++ {
		big.Chunks = append(big.Chunks, ChunkRef{ID: BlobID{byte(i)}, Size: uint32(i) << 12})
	}
	enc := EncodeObject(&Object{Versions: []Version{*big}})
	dec, err := DecodeObject(enc)
	if err != nil || len(dec.Versions[0].Chunks) != 200 || dec.Versions[0].Chunks[199].Size != 199<<12 {
		t.Fatalf("large version round trip: %v %+v", err, dec)
	}
}

func TestDecodeGarbageNeverPanics(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	valid := EncodeObject(gen{r}.object())
	for i := 0; i < 20000; i++ {
		b := append([]byte(nil), valid...)
		if len(b) > 0 {
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			b = b[:r.IntN(len(b)+1)]
		}
		_, _ = DecodeObject(b)
		_, _ = DecodeBucket(b)
		_, _ = DecodeRef(b)
		_, _ = DecodeExtents(b)
	}
}

func FuzzDecodeObject(f *testing.F) {
	f.Add(EncodeObject(gen{rand.New(rand.NewPCG(1, 1))}.object()))
	f.Add(EncodeObject(&Object{Versions: []Version{encryptedVersion()}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeObject(b)
		if err != nil {
			return
		}
		// Whatever decodes must merge and re-encode without panicking,
		// and what it re-encodes to decodes to the same record.
		enc := EncodeObject(MergeObject(o, o))
		again, err := DecodeObject(enc)
		if err != nil || !bytes.Equal(EncodeObject(again), enc) {
			t.Fatalf("re-encoded record does not round-trip: %v", err)
		}
	})
}

func FuzzDecodeUpload(f *testing.F) {
	f.Add(EncodeUpload(&Upload{Key: "k", UploadID: "u", Encryption: encryptedVersion().Encryption}))
	f.Add(EncodeUpload(&Upload{Key: "k", UploadID: "u", Encryption: &Encryption{Kind: EncryptionS3, KeyID: "k1", DataKey: []byte{1}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeUpload(b)
		if err != nil {
			return
		}
		enc := EncodeUpload(MergeUpload(u, u))
		again, err := DecodeUpload(enc)
		if err != nil || !bytes.Equal(EncodeUpload(again), enc) {
			t.Fatalf("re-encoded upload does not round-trip: %v", err)
		}
	})
}

func encryptedVersion() Version {
	return Version{
		ID: "null", Timestamp: 3, WriteID: WriteID{1}, Size: 5, ETag: "e", Inline: []byte("sealed"),
		Encryption: &Encryption{Kind: EncryptionC, Salt: []byte("salt"), KeyCheck: []byte("check"), DataKey: []byte("wrapped")},
	}
}

// TestEncryptionRoundTrip: the wrapped data key survives encoding, a
// listing's stripped form, and a merge of the record with an older copy
// of its slot; an empty Encryption stays set (it says "encrypted").
func TestEncryptionRoundTrip(t *testing.T) {
	v := encryptedVersion()
	enc := EncodeObject(&Object{Versions: []Version{v}})
	for name, b := range map[string][]byte{"record": enc, "stripped": StripInline(enc)} {
		o, err := DecodeObject(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Versions[0].Encryption; !reflect.DeepEqual(got, v.Encryption) {
			t.Fatalf("%s: encryption %+v, want %+v", name, got, v.Encryption)
		}
	}
	older := v
	older.Timestamp, older.Encryption = 2, nil
	m := MergeObject(&Object{Versions: []Version{older}}, &Object{Versions: []Version{v}})
	if !reflect.DeepEqual(m.Versions[0].Encryption, v.Encryption) {
		t.Fatal("the newer write's encryption was lost in the merge")
	}
	empty := Version{ID: "a", Timestamp: 1, Encryption: &Encryption{}}
	o, err := DecodeObject(EncodeObject(&Object{Versions: []Version{empty}}))
	if err != nil || o.Versions[0].Encryption == nil {
		t.Fatalf("an empty Encryption decoded as none: %v", err)
	}
	u := &Upload{Key: "k", UploadID: "u", Encryption: &Encryption{Kind: EncryptionS3, KeyID: "k2", DataKey: []byte("w")}}
	du, err := DecodeUpload(EncodeUpload(u))
	if err != nil || !reflect.DeepEqual(du.Encryption, u.Encryption) {
		t.Fatalf("upload encryption %+v, %v", du.Encryption, err)
	}
}

// TestMergeRefKeepsTheLatestRecording: a write in progress records its
// references again so that garbage collection sees them young; the merge
// must keep the latest recording whichever replica it comes from.
func TestMergeRefKeepsTheLatestRecording(t *testing.T) {
	// The renewal's encoding sorts below the original's (its varint's
	// first byte is smaller), so picking the larger encoding is not enough.
	old := &Ref{Kind: RefVersion, Key: "k", WriteID: WriteID{1}, Created: MakeTimestamp(time.Unix(1000, 0), 127)}
	renewed := *old
	renewed.Created = MakeTimestamp(time.Unix(1000, 0), 128)
	for _, m := range []*Ref{MergeRef(old, &renewed), MergeRef(&renewed, old)} {
		if m.Created != renewed.Created {
			t.Fatalf("merged Created %v; want the renewal's %v", m.Created, renewed.Created)
		}
	}
}
