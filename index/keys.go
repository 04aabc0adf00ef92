package index

import (
	"encoding/binary"
	"fmt"
)

// Local store keys. The first byte is a namespace:
//
//	'r' partition(2, big endian) table(1) uvarint(len(pk)) pk sk   records
//	'h' uvarint(len(owner)) owner recordkey                         hints held for owner
//	'm' name                                                        node-local metadata
//
// Partition comes first so every partition is one contiguous key range:
// anti-entropy and rebalancing walk or stream a partition with one
// iterator, and dropping a partition is one range deletion.
const (
	nsRecord = 'r'
	nsHint   = 'h'
	nsMeta   = 'm'
)

// RecordKey returns the local store key of a record.
func RecordKey(part uint16, t Table, pk, sk []byte) []byte {
	k := make([]byte, 0, 4+binary.MaxVarintLen32+len(pk)+len(sk))
	k = append(k, nsRecord, byte(part>>8), byte(part), byte(t))
	k = binary.AppendUvarint(k, uint64(len(pk)))
	k = append(k, pk...)
	return append(k, sk...)
}

// recordPrefix is the common prefix of the records sharing pk.
func recordPrefix(part uint16, t Table, pk []byte) []byte { return RecordKey(part, t, pk, nil) }

// ParsedKey is a decoded record key.
type ParsedKey struct {
	Partition uint16
	Table     Table
	PK, SK    []byte
}

// ParseRecordKey decodes a record key; the returned slices alias k.
func ParseRecordKey(k []byte) (ParsedKey, error) {
	if len(k) < 5 || k[0] != nsRecord {
		return ParsedKey{}, fmt.Errorf("record key %x: bad prefix", k)
	}
	p := ParsedKey{Partition: uint16(k[1])<<8 | uint16(k[2]), Table: Table(k[3])}
	n, l := binary.Uvarint(k[4:])
	if l <= 0 || uint64(len(k)-4-l) < n {
		return ParsedKey{}, fmt.Errorf("record key %x: bad placement key length", k)
	}
	p.PK = k[4+l : 4+l+int(n)]
	p.SK = k[4+l+int(n):]
	return p, nil
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil if there is none.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func metaKey(name string) []byte { return append([]byte{nsMeta}, name...) }

// hintKey is the key of the hint held for owner of the record at key.
func hintKey(owner string, key []byte) []byte {
	k := make([]byte, 0, 1+binary.MaxVarintLen32+len(owner)+len(key))
	k = append(k, nsHint)
	k = binary.AppendUvarint(k, uint64(len(owner)))
	k = append(k, owner...)
	return append(k, key...)
}

// parseHintKey splits a hint key into its owner and record key.
func parseHintKey(k []byte) (owner string, key []byte, ok bool) {
	if len(k) < 2 || k[0] != nsHint {
		return "", nil, false
	}
	n, l := binary.Uvarint(k[1:])
	if l <= 0 || uint64(len(k)-1-l) < n {
		return "", nil, false
	}
	return string(k[1+l : 1+l+int(n)]), k[1+l+int(n):], true
}
