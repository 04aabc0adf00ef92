package index

import "context"

// Op is the kind of a replica request.
type Op uint8

const (
	// OpMerge merges Items into the replica's store.
	OpMerge Op = 1
	// OpGet reads the records at Keys.
	OpGet Op = 2
	// OpRange reads records with keys in [Lo, Hi).
	OpRange Op = 3
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
}

// Response is a replica's reply.
type Response struct {
	Values [][]byte   // OpGet: one per key, nil when absent
	Range  []KeyValue // OpRange
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

// Serve applies a replica request to the local store.
func (s *Store) Serve(req *Request) (*Response, error) {
	switch req.Op {
	case OpMerge:
		if _, err := s.Merge(req.Items, req.Sync); err != nil {
			return nil, err
		}
		return &Response{}, nil
	case OpGet:
		out := &Response{Values: make([][]byte, len(req.Keys))}
		for i, k := range req.Keys {
			v, err := s.Get(k)
			if err != nil {
				return nil, err
			}
			out.Values[i] = v
		}
		return out, nil
	case OpRange:
		kvs, err := s.Scan(req.Lo, req.Hi, req.Limit, req.Reverse)
		if err != nil {
			return nil, err
		}
		return &Response{Range: kvs}, nil
	}
	return nil, errUnknownOp
}
