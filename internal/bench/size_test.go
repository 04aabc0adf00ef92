// Goal: ParseSize reads every size spelling the CLI documents (bare bytes,
// IEC units, decimal units, fractions) and rejects malformed or
// out-of-range input; FormatSize renders the binary units back.
// Method: table-driven cases with hand-computed expectations.
package bench

import "testing"

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"4096", 4096},
		{"4KiB", 4 << 10},
		{"4kib", 4 << 10},
		{"64KiB", 64 << 10},
		{"1MiB", 1 << 20},
		{"64MiB", 64 << 20},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{"4K", 4 << 10},
		{"4Ki", 4 << 10},
		{"1M", 1 << 20},
		{"10KB", 10_000},
		{"10MB", 10_000_000},
		{"1GB", 1_000_000_000},
		{"512B", 512},
		{" 8 KiB ", 8 << 10},
		{"1.5KiB", 1536},
		{"0.5MiB", 512 << 10},
	}
	for _, c := range good {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "KiB", "abc", "-1", "-4KiB", "4XB", "1.3B", "0.1KiB", "9999999TiB", "NaN", "Inf"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{
		0: "0 B", 512: "512 B", 4 << 10: "4 KiB", 1536: "1.5 KiB", 64 << 20: "64 MiB", 3 << 30: "3 GiB",
	} {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
	}
}
