// crccombine_test.go checks the CRC combination against direct
// computation over random splits, for every CRC algorithm S3 supports.
package gateway

import (
	"math/rand/v2"
	"testing"
)

func TestCRCCombine(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for alg, p := range crcAlgorithms {
		for trial := 0; trial < 50; trial++ {
			data := make([]byte, r.IntN(5000))
			for i := range data {
				data[i] = byte(r.IntN(256))
			}
			cut := 0
			if len(data) > 0 {
				cut = r.IntN(len(data) + 1)
			}
			sum := func(b []byte) uint64 {
				h := newChecksum(alg)
				h.Write(b)
				v, _ := decodeCRC(p, encodeB64(h.Sum(nil)))
				return v
			}
			got := crcCombine(p, sum(data[:cut]), sum(data[cut:]), int64(len(data)-cut))
			if want := sum(data); got != want {
				t.Fatalf("%s: combine(%d+%d) = %x; want %x", alg, cut, len(data)-cut, got, want)
			}
		}
	}
}
