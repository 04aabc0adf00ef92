package main

import (
	"testing"

	"github.com/ringstore/ringstore/internal/diskspace"
)

func TestParseMinFree(t *testing.T) {
	for in, want := range map[string]diskspace.Floor{
		"1GiB,5%":  {Bytes: 1 << 30, Percent: 5},
		"5%, 1GiB": {Bytes: 1 << 30, Percent: 5},
		"2GiB":     {Bytes: 2 << 30},
		"10%":      {Percent: 10},
		"0.5%":     {Percent: 0.5},
		"0":        {},
		"64MiB":    {Bytes: 64 << 20},
	} {
		got, err := parseMinFree(in)
		if err != nil || got != want {
			t.Errorf("parseMinFree(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1GiB", "60%", "-5%", "NaN%", "1GiB,2GiB", "5%,6%", "1GiB,5%,1", "0,5%", "lots", "%", "1.5B"} {
		if f, err := parseMinFree(in); err == nil {
			t.Errorf("parseMinFree(%q) = %+v; want an error", in, f)
		}
	}
}
