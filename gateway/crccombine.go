package gateway

import (
	"encoding/base64"
	"encoding/binary"
)

// Full-object checksums of multipart uploads: S3 defines the CRC of the
// whole object, which is computed from the parts' CRCs and lengths without
// reading the bytes again (the zlib crc32_combine method, generalised to
// any reflected CRC whose initial value and final xor are all ones).

type crcParams struct {
	poly  uint64 // reflected polynomial
	width int    // bits
}

var crcAlgorithms = map[string]crcParams{
	"CRC32":     {0xEDB88320, 32},
	"CRC32C":    {0x82F63B78, 32},
	"CRC64NVME": {0x9A6C9329AC4BC9B5, 64},
}

func gf2Times(mat []uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat []uint64) {
	for n := range mat {
		square[n] = gf2Times(mat, mat[n])
	}
}

// crcCombine returns the CRC of A||B from crc(A), crc(B) and len(B).
func crcCombine(p crcParams, crc1, crc2 uint64, len2 int64) uint64 {
	if len2 <= 0 {
		return crc1
	}
	even := make([]uint64, p.width)
	odd := make([]uint64, p.width)
	// The operator for one zero bit.
	odd[0] = p.poly
	row := uint64(1)
	for n := 1; n < p.width; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(even, odd) // two zero bits
	gf2Square(odd, even) // four zero bits
	for {
		gf2Square(even, odd)
		if len2&1 != 0 {
			crc1 = gf2Times(even, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
		gf2Square(odd, even)
		if len2&1 != 0 {
			crc1 = gf2Times(odd, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
	}
	return crc1 ^ crc2
}

// decodeCRC decodes a base64 big-endian CRC value.
func decodeCRC(p crcParams, v string) (uint64, bool) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != p.width/8 {
		return 0, false
	}
	if p.width == 32 {
		return uint64(binary.BigEndian.Uint32(b)), true
	}
	return binary.BigEndian.Uint64(b), true
}

func encodeCRC(p crcParams, v uint64) string {
	if p.width == 32 {
		return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, uint32(v)))
	}
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, v))
}
