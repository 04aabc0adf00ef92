package index

import (
	"bytes"
	"context"
	"fmt"
)

// Access keys are index records like any other, so every node of a cluster
// authenticates the same keys. pk "", sk the access key id.

// AccessKey is the record of one access key.
type AccessKey struct {
	ID      string
	Secret  string
	Name    string
	Created Timestamp
	Deleted Timestamp // non-zero once revoked
}

// Live reports whether the key can sign requests.
func (k *AccessKey) Live() bool { return k != nil && k.Deleted == 0 }

// EncodeAccessKey returns the canonical encoding of k.
func EncodeAccessKey(k *AccessKey) []byte {
	e := encoder{}
	e.str(1, k.ID)
	e.str(2, k.Secret)
	e.str(3, k.Name)
	e.uint(4, uint64(k.Created))
	e.uint(5, uint64(k.Deleted))
	return e.b
}

// DecodeAccessKey parses an encoded AccessKey.
func DecodeAccessKey(b []byte) (*AccessKey, error) {
	k := &AccessKey{}
	d := decoder{b: b}
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			k.ID = d.str(t)
		case 2:
			k.Secret = d.str(t)
		case 3:
			k.Name = d.str(t)
		case 4:
			k.Created = Timestamp(d.uint(t))
		case 5:
			k.Deleted = Timestamp(d.uint(t))
		default:
			d.skip(n, t)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode access key: %w", d.err)
	}
	return k, nil
}

// MergeAccessKey joins two states of a key: the fields are fixed at
// creation (the larger encoding wins a conflict), a revocation is final.
func MergeAccessKey(a, b *AccessKey) *AccessKey {
	ac, bc := *a, *b
	ac.Deleted, bc.Deleted = 0, 0
	out := ac
	if bytes.Compare(EncodeAccessKey(&ac), EncodeAccessKey(&bc)) < 0 {
		out = bc
	}
	out.Deleted = max(a.Deleted, b.Deleted)
	return &out
}

// GetAccessKey returns the key record, or nil.
func (ix *Index) GetAccessKey(ctx context.Context, id string) (*AccessKey, error) {
	v, err := ix.Get(ctx, TableKeys, nil, []byte(id))
	if err != nil || v == nil {
		return nil, err
	}
	return DecodeAccessKey(v)
}

// PutAccessKey merges a key record.
func (ix *Index) PutAccessKey(ctx context.Context, k *AccessKey) error {
	return ix.Put(ctx, Record{Table: TableKeys, SK: []byte(k.ID), Value: EncodeAccessKey(k)})
}

// ListAccessKeys returns every key record, revoked ones included.
func (ix *Index) ListAccessKeys(ctx context.Context) ([]*AccessKey, error) {
	var out []*AccessKey
	var from []byte
	for {
		entries, more, err := ix.Range(ctx, TableKeys, nil, from, nil, 1000, false)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			k, err := DecodeAccessKey(e.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
		if !more || len(entries) == 0 {
			return out, nil
		}
		from = append(entries[len(entries)-1].SK, 0)
	}
}
