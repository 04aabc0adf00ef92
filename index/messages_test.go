// messages_test.go checks that replica requests and responses survive the
// wire unchanged, including the distinctions that matter (absent versus
// empty values, no upper bound versus an empty one).
package index

import (
	"reflect"
	"testing"
)

func TestMessagesRoundTrip(t *testing.T) {
	reqs := []*Request{
		{Op: OpMerge, Items: []Item{{Table: TableObjects, Key: []byte("k"), Value: []byte("v")}}, Sync: true, For: "n2", Clock: 99},
		{Op: OpGet, Keys: [][]byte{[]byte("a"), {}}},
		{Op: OpRange, Lo: []byte("a"), Hi: nil, Limit: 10, Reverse: true},
		{Op: OpRange, Lo: []byte("a"), Hi: []byte("z")},
		{Op: OpLeafEntries, Parts: []uint16{0, 513, 65535}, Leaves: []byte{3, 200}},
	}
	for _, r := range reqs {
		got, err := DecodeRequest(EncodeRequest(r))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("request round trip:\n got %#v, %v\nwant %#v", got, err, r)
		}
	}
	// Decoded items alias the buffer, capped: appending to a key (as range
	// scans do, to step past it) must not overwrite the value behind it.
	two := &Request{Op: OpMerge, Items: []Item{
		{Table: TableObjects, Key: []byte("k1"), Value: []byte("value one")},
		{Table: TableObjects, Key: []byte("k2"), Value: []byte("value two")},
	}}
	dec, err := DecodeRequest(EncodeRequest(two))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(dec.Items[0].Key, "XXXXXXXX"...)
	_ = append(dec.Items[0].Value, "XXXXXXXX"...)
	if !reflect.DeepEqual(dec, two) {
		t.Fatalf("appending to decoded fields changed the request: %#v", dec)
	}
	resp := &Response{Values: [][]byte{nil, {}, []byte("x")}, Range: []KeyValue{{Key: []byte("k"), Value: []byte("v")}}, Clock: 7}
	got, err := DecodeResponse(EncodeResponse(resp))
	if err != nil || !reflect.DeepEqual(got, resp) {
		t.Fatalf("response round trip:\n got %#v, %v\nwant %#v", got, err, resp)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(EncodeRequest(&Request{Op: OpMerge, Items: []Item{{Table: TableObjects, Key: []byte("k"), Value: []byte("v")}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeRequest(b)
		_, _ = DecodeResponse(b)
	})
}
