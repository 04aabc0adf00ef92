package index

import (
	"bytes"
	"context"
)

// Op is the kind of a replica request.
type Op uint8

const (
	// OpMerge merges Items into the replica's store.
	OpMerge Op = 1
	// OpGet reads the records at Keys.
	OpGet Op = 2
	// OpRange reads records with keys in [Lo, Hi).
	OpRange Op = 3
	// OpTreeRoots returns the record tree root of each of Parts.
	OpTreeRoots Op = 4
	// OpTreeLeaves returns the 256 leaves of the tree of Parts[0].
	OpTreeLeaves Op = 5
	// OpLeafEntries returns (key, state hash) of the records of Parts[0]
	// in Leaves.
	OpLeafEntries Op = 6
	// OpDigest returns, for each of Keys, the state hash of the record
	// (the one its tree leaf is built from), nil when absent: a read
	// quorum's second opinion without the record's bytes.
	OpDigest Op = 7
	// OpHintedParts returns the partitions this node holds hints for, for
	// any owner: one value, a bitmap with bit p (byte p/8, bit p%8) set
	// for partition p.
	OpHintedParts Op = 8
)

// Request is a message from a coordinator to a replica.
type Request struct {
	Op      Op
	Items   []Item   // OpMerge
	Sync    bool     // OpMerge: durable before the reply
	Keys    [][]byte // OpGet
	Lo, Hi  []byte   // OpRange
	Limit   int      // OpRange; 0 means no limit
	Reverse bool     // OpRange
	// NoInline (OpRange over object records) returns each record without
	// its versions' inline bodies (StripInline): a listing reads keys and
	// sizes, and a page of 64 KiB objects would otherwise carry 64 MiB.
	NoInline bool
	// For names the owner this request is meant for when it is sent to a
	// fallback: merges are kept as hints for that owner, and reads look in
	// those hints.
	For string
	// Clock is the sender's hybrid logical clock, so the receiver's clock
	// moves past everything the sender has seen.
	Clock Timestamp
	// Parts and Leaves address trees (OpTree*, OpLeafEntries).
	Parts  []uint16
	Leaves []byte
}

// Response is a replica's reply.
type Response struct {
	Values [][]byte   // OpGet, OpDigest: one per key, nil when absent
	Range  []KeyValue // OpRange
	Clock  Timestamp  // the replica's clock
}

// Transport carries replica requests between nodes. Call returns the
// remote replica's reply, or an error if the request may not have been
// applied; a request may be applied even when Call fails (the reply was
// lost), which is harmless because every request is idempotent (merges are
// idempotent, reads change nothing). Implementations must be safe for
// concurrent use.
type Transport interface {
	Call(ctx context.Context, node string, req *Request) (*Response, error)
}

// Serve applies a replica request to the local store: to the records when
// this node is an owner, to the hints it keeps for req.For otherwise.
func (s *Store) Serve(req *Request) (*Response, error) {
	keyOf := func(k []byte) []byte { return k }
	if req.For != "" {
		keyOf = func(k []byte) []byte { return hintKey(req.For, k) }
	}
	switch req.Op {
	case OpMerge:
		items := req.Items
		if req.For != "" {
			items = make([]Item, len(req.Items))
			for i, it := range req.Items {
				items[i] = Item{Table: it.Table, Key: keyOf(it.Key), Value: it.Value}
			}
		}
		if _, err := s.Merge(items, req.Sync); err != nil {
			return nil, err
		}
		return &Response{}, nil
	case OpGet, OpDigest:
		out := &Response{Values: make([][]byte, len(req.Keys))}
		for i, k := range req.Keys {
			v, err := s.Get(keyOf(k))
			if err != nil {
				return nil, err
			}
			if v != nil && req.Op == OpDigest {
				// Hashed under the record's own key, so a fallback's hint
				// digests the same as the owner's record.
				h := itemHash(k, v)
				v = h[:]
			}
			out.Values[i] = v
		}
		return out, nil
	case OpRange:
		lo, hi := keyOf(req.Lo), req.Hi
		if hi != nil {
			hi = keyOf(hi)
		} else if req.For != "" {
			hi = prefixEnd(hintKey(req.For, nil))
		}
		value := bytes.Clone
		if req.NoInline {
			value = StripInline
		}
		kvs, err := s.scan(lo, hi, req.Limit, req.Reverse, value)
		if err != nil {
			return nil, err
		}
		if req.For != "" {
			strip := len(hintKey(req.For, nil))
			for i := range kvs {
				kvs[i].Key = kvs[i].Key[strip:]
			}
		}
		return &Response{Range: kvs}, nil
	case OpTreeRoots:
		out := &Response{Values: make([][]byte, len(req.Parts))}
		for i, p := range req.Parts {
			t, err := s.Tree(p)
			if err != nil {
				return nil, err
			}
			root := t.Root()
			out.Values[i] = root[:]
		}
		return out, nil
	case OpTreeLeaves:
		if len(req.Parts) != 1 {
			return nil, errBadTreeRequest
		}
		t, err := s.Tree(req.Parts[0])
		if err != nil {
			return nil, err
		}
		leaves := make([]byte, 0, treeLeaves*hashBytes)
		for _, l := range t.Leaves {
			leaves = append(leaves, l[:]...)
		}
		return &Response{Values: [][]byte{leaves}}, nil
	case OpLeafEntries:
		if len(req.Parts) != 1 {
			return nil, errBadTreeRequest
		}
		entries, err := s.LeafEntries(req.Parts[0], req.Leaves)
		if err != nil {
			return nil, err
		}
		out := &Response{Range: make([]KeyValue, len(entries))}
		for i, e := range entries {
			out.Range[i] = KeyValue{Key: e.Key, Value: append([]byte(nil), e.Hash[:]...)}
		}
		return out, nil
	case OpHintedParts:
		bitmap, err := s.HintedPartitions()
		if err != nil {
			return nil, err
		}
		return &Response{Values: [][]byte{bitmap}}, nil
	}
	return nil, errUnknownOp
}
