package index

import (
	"context"
	"fmt"

	"github.com/ringstore/ringstore/internal/rpc"
)

// Replica requests travel between nodes in the protobuf wire format, like
// records. RPCService is the rpc service name they use.
const RPCService = "index"

func encodeItem(e *encoder, it Item) {
	e.uint(1, uint64(it.Table))
	e.bytes(2, it.Key)
	e.bytes(3, it.Value)
}

// EncodeRequest encodes a replica request.
func EncodeRequest(r *Request) []byte {
	n := 64 + len(r.Lo) + len(r.Hi) + len(r.For) + 3*len(r.Parts) + len(r.Leaves)
	for _, it := range r.Items {
		n += 16 + len(it.Key) + len(it.Value)
	}
	for _, k := range r.Keys {
		n += 8 + len(k)
	}
	e := encoder{b: make([]byte, 0, n)}
	e.uint(1, uint64(r.Op))
	for _, it := range r.Items {
		e.message(2, func(e *encoder) { encodeItem(e, it) })
	}
	e.bool(3, r.Sync)
	for _, k := range r.Keys {
		e.message(4, func(e *encoder) { e.bytes(1, k) })
	}
	e.bytes(5, r.Lo)
	e.bytes(6, r.Hi)
	e.uint(7, uint64(r.Limit))
	e.bool(8, r.Reverse)
	e.str(9, r.For)
	e.uint(10, uint64(r.Clock))
	e.bool(11, r.Hi != nil && len(r.Hi) == 0)
	if len(r.Parts) > 0 {
		pb := make([]byte, 0, 2*len(r.Parts))
		for _, p := range r.Parts {
			pb = append(pb, byte(p>>8), byte(p))
		}
		e.bytes(12, pb)
	}
	e.bytes(13, r.Leaves)
	e.bool(14, r.NoInline)
	return e.b
}

// DecodeRequest decodes a replica request. Its items and keys alias b
// (a request's 4 KiB record is not copied again on every replica): b must
// not be modified afterwards.
func DecodeRequest(b []byte) (*Request, error) {
	r := &Request{}
	d := decoder{b: b}
	emptyHi := false
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			r.Op = Op(d.uint(t))
		case 2:
			var it Item
			d.message(t, func(d *decoder) {
				for n, t, ok := d.next(); ok; n, t, ok = d.next() {
					switch n {
					case 1:
						it.Table = Table(d.uint(t))
					case 2:
						it.Key = d.view(t)
					case 3:
						it.Value = d.view(t)
					default:
						d.skip(n, t)
					}
				}
			})
			r.Items = append(r.Items, it)
		case 3:
			r.Sync = d.bool(t)
		case 4:
			k := []byte{}
			d.message(t, func(d *decoder) {
				for n, t, ok := d.next(); ok; n, t, ok = d.next() {
					if n == 1 {
						if v := d.view(t); v != nil {
							k = v
						}
					} else {
						d.skip(n, t)
					}
				}
			})
			r.Keys = append(r.Keys, k)
		case 5:
			r.Lo = append([]byte(nil), d.bytes(t)...)
		case 6:
			r.Hi = append([]byte(nil), d.bytes(t)...)
		case 7:
			r.Limit = int(d.uint(t))
		case 8:
			r.Reverse = d.bool(t)
		case 9:
			r.For = d.str(t)
		case 10:
			r.Clock = Timestamp(d.uint(t))
		case 11:
			emptyHi = d.bool(t)
		case 12:
			pb := d.bytes(t)
			if len(pb)%2 != 0 {
				return nil, fmt.Errorf("decode replica request: odd partition list")
			}
			for i := 0; i < len(pb); i += 2 {
				r.Parts = append(r.Parts, uint16(pb[i])<<8|uint16(pb[i+1]))
			}
		case 13:
			r.Leaves = append([]byte(nil), d.bytes(t)...)
		case 14:
			r.NoInline = d.bool(t)
		default:
			d.skip(n, t)
		}
	}
	if emptyHi {
		r.Hi = []byte{}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode replica request: %w", d.err)
	}
	return r, nil
}

// EncodeResponse encodes a replica response. Absent values (nil) and empty
// ones are told apart, since a Get of a missing record returns nil.
func EncodeResponse(r *Response) []byte {
	n := 64
	for _, v := range r.Values {
		n += 16 + len(v)
	}
	for _, kv := range r.Range {
		n += 16 + len(kv.Key) + len(kv.Value)
	}
	e := encoder{b: make([]byte, 0, n)}
	for _, v := range r.Values {
		e.message(1, func(e *encoder) {
			e.bool(1, v != nil)
			e.bytes(2, v)
		})
	}
	for _, kv := range r.Range {
		e.message(2, func(e *encoder) {
			e.bytes(1, kv.Key)
			e.bytes(2, kv.Value)
		})
	}
	e.uint(3, uint64(r.Clock))
	return e.b
}

// DecodeResponse decodes a replica response.
func DecodeResponse(b []byte) (*Response, error) {
	r := &Response{}
	d := decoder{b: b}
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			var v []byte
			present := false
			d.message(t, func(d *decoder) {
				for n, t, ok := d.next(); ok; n, t, ok = d.next() {
					switch n {
					case 1:
						present = d.bool(t)
					case 2:
						v = append([]byte{}, d.bytes(t)...)
					default:
						d.skip(n, t)
					}
				}
			})
			if present && v == nil {
				v = []byte{}
			}
			if !present {
				v = nil
			}
			r.Values = append(r.Values, v)
		case 2:
			var kv KeyValue
			d.message(t, func(d *decoder) {
				for n, t, ok := d.next(); ok; n, t, ok = d.next() {
					switch n {
					case 1:
						kv.Key = append([]byte(nil), d.bytes(t)...)
					case 2:
						kv.Value = append([]byte(nil), d.bytes(t)...)
					default:
						d.skip(n, t)
					}
				}
			})
			r.Range = append(r.Range, kv)
		case 3:
			r.Clock = Timestamp(d.uint(t))
		default:
			d.skip(n, t)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode replica response: %w", d.err)
	}
	return r, nil
}

// RPCTransport carries replica requests over an rpc.Transport.
type RPCTransport struct{ RPC rpc.Transport }

// Call implements Transport.
func (t RPCTransport) Call(ctx context.Context, node string, req *Request) (*Response, error) {
	b, err := t.RPC.Call(ctx, node, RPCService, EncodeRequest(req))
	if err != nil {
		return nil, err
	}
	return DecodeResponse(b)
}

// RPCHandler serves replica requests from other nodes out of store,
// keeping clock ahead of every clock it hears from.
func RPCHandler(store *Store, clock *Clock) rpc.Handler {
	return func(_ context.Context, _ string, body []byte) ([]byte, error) {
		req, err := DecodeRequest(body)
		if err != nil {
			return nil, err
		}
		clock.Observe(req.Clock)
		resp, err := store.Serve(req)
		if err != nil {
			return nil, err
		}
		resp.Clock = clock.Peek()
		return EncodeResponse(resp), nil
	}
}
