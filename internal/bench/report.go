package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is a finished run: its parameters, one entry per operation type,
// and (with Baseline) the machine's limits. It is also the --json document.
type Result struct {
	Params          Params     `json:"params"`
	Start           time.Time  `json:"start"`
	ElapsedSeconds  float64    `json:"elapsed_s"`
	Operations      []OpResult `json:"operations"`
	Total           OpResult   `json:"total"`
	Baseline        *Baseline  `json:"baseline,omitempty"`
	ErrorSamples    []string   `json:"error_samples,omitempty"`
	RanOutOfObjects bool       `json:"ran_out_of_objects,omitempty"`
	Interrupted     bool       `json:"interrupted,omitempty"`
	CleanupError    string     `json:"cleanup_error,omitempty"`
}

// Params echoes the run's configuration as it was after defaults.
type Params struct {
	Mode            Mode     `json:"mode"`
	Endpoints       []string `json:"endpoints"`
	Region          string   `json:"region"`
	Bucket          string   `json:"bucket"`
	Prefix          string   `json:"prefix"`
	ObjSize         int64    `json:"obj_size"`
	Concurrency     int      `json:"concurrency"`
	DurationSeconds float64  `json:"duration_s,omitempty"`
	Ops             int64    `json:"ops_limit,omitempty"`
	Objects         int      `json:"objects,omitempty"`
	ListMaxKeys     int      `json:"list_max_keys,omitempty"`
	VerifyFraction  float64  `json:"verify_fraction"`
	Seed            uint64   `json:"seed"`
	Keep            bool     `json:"keep"`
	SSE             string   `json:"sse,omitempty"`
	NumCPU          int      `json:"num_cpu"`
	GoMaxProcs      int      `json:"gomaxprocs"`
	GoVersion       string   `json:"go_version"`
}

// OpResult is one operation type's figures. Ops counts successful
// operations only; failed ones are in Errors and in no other figure.
type OpResult struct {
	Op           string         `json:"op"`
	Ops          int64          `json:"ops"`
	Bytes        int64          `json:"bytes"`
	OpsPerSec    float64        `json:"ops_per_s"`
	MiBPerSec    float64        `json:"mib_per_s"`
	Latency      LatencySummary `json:"latency"`
	Errors       int64          `json:"errors"`
	VerifyErrors int64          `json:"verify_errors"`
	Verified     int64          `json:"verified"` // reads checked byte for byte; for LIST, complete listings checked
	Keys         int64          `json:"keys,omitempty"`
	KeysPerSec   float64        `json:"keys_per_s,omitempty"`
	VsBaseline   []Ratio        `json:"vs_baseline,omitempty"`
}

// Ratio is one figure divided by the machine limit it is bounded by.
type Ratio struct {
	Metric     string  `json:"metric"` // "ops_per_s" or "mib_per_s"
	Limit      string  `json:"limit"`  // which baseline figure
	Value      float64 `json:"value"`
	LimitValue float64 `json:"limit_value"`
	Ratio      float64 `json:"ratio"`
}

func newResult(cfg Config) *Result {
	return &Result{
		Start: time.Now().UTC(),
		Params: Params{
			Mode: cfg.Mode, Endpoints: cfg.Endpoints, Region: cfg.Region, Bucket: cfg.Bucket,
			ObjSize: cfg.ObjSize, Concurrency: cfg.Concurrency, DurationSeconds: cfg.Duration.Seconds(),
			Ops: cfg.Ops, ListMaxKeys: cfg.ListMaxKeys, VerifyFraction: cfg.VerifyFraction,
			Seed: cfg.Seed, Keep: cfg.Keep, SSE: cfg.SSE, NumCPU: runtime.NumCPU(), GoMaxProcs: runtime.GOMAXPROCS(0),
			GoVersion: runtime.Version(),
		},
	}
}

func (r *Result) fill(cfg Config, pr phaseResult) {
	if cfg.Mode.prefilled() {
		r.Params.Objects = cfg.Objects
	}
	if cfg.Mode == ModeList {
		r.Params.ListMaxKeys = cfg.ListMaxKeys
	} else {
		r.Params.ListMaxKeys = 0
	}
	r.ElapsedSeconds = pr.elapsed.Seconds()
	r.ErrorSamples = pr.errors
	r.RanOutOfObjects = pr.ranOut
	secs := max(pr.elapsed.Seconds(), 1e-9)
	var total opCounts
	for _, op := range cfg.Mode.ops() {
		c := pr.counts[op]
		total.add(c)
		o := opResult(op.String(), c, pr.latency[op], secs)
		if op == OpList {
			o.Keys, o.KeysPerSec = c.keys, float64(c.keys)/secs
		}
		r.Operations = append(r.Operations, o)
	}
	r.Total = opResult("TOTAL", total, pr.all, secs)
	r.Total.Keys, r.Total.KeysPerSec = 0, 0
	if r.Baseline != nil {
		for i := range r.Operations {
			r.Operations[i].VsBaseline = r.Baseline.ratios(&r.Operations[i], cfg.ObjSize)
		}
	}
}

func opResult(name string, c opCounts, lat LatencySummary, secs float64) OpResult {
	return OpResult{
		Op: name, Ops: c.ops, Bytes: c.bytes,
		OpsPerSec: float64(c.ops) / secs, MiBPerSec: float64(c.bytes) / secs / (1 << 20),
		Latency: lat, Errors: c.errors, VerifyErrors: c.verifyErrors, Verified: c.verified,
	}
}

// Errors is the number of failed operations of every type.
func (r *Result) Errors() int64 { return r.Total.Errors }

// Op returns the figures of one operation type ("PUT", ...), if present.
func (r *Result) Op(name string) (OpResult, bool) {
	for _, o := range r.Operations {
		if o.Op == name {
			return o, true
		}
	}
	return OpResult{}, false
}

// WriteJSON writes the result as one indented JSON document.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write JSON result: %w", err)
	}
	return nil
}

// WriteText writes the human-readable report: a header line, one table
// row per operation type, and the baseline when measured.
func (r *Result) WriteText(w io.Writer) error {
	p := r.Params
	var b strings.Builder
	bound := fmt.Sprintf("%.2fs", r.ElapsedSeconds)
	if p.Ops > 0 {
		bound += fmt.Sprintf(" (ops limit %d)", p.Ops)
	}
	fmt.Fprintf(&b, "ringstore bench %s: %s objects, %d clients, %s, %d endpoint(s), bucket %s, prefix %s\n",
		p.Mode, FormatSize(p.ObjSize), p.Concurrency, bound, len(p.Endpoints), p.Bucket, p.Prefix)
	if p.Objects > 0 {
		fmt.Fprintf(&b, "pre-filled objects: %d; verify fraction %.3g; seed %d\n", p.Objects, p.VerifyFraction, p.Seed)
	}
	if p.SSE != "" {
		fmt.Fprintf(&b, "server-side encryption: %s\n", p.SSE)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := "OP\tOPS\tOPS/S\tMIB/S\tP50 MS\tP90 MS\tP99 MS\tP99.9 MS\tERRORS\t"
	if r.Baseline != nil {
		hdr += "VS BASELINE\t"
	}
	fmt.Fprintln(tw, hdr)
	rows := r.Operations
	if len(rows) > 1 {
		rows = append(rows[:len(rows):len(rows)], r.Total)
	}
	for _, o := range rows {
		mib := fmt.Sprintf("%.2f", o.MiBPerSec)
		if o.Op == "STAT" || o.Op == "LIST" || o.Op == "DELETE" {
			mib = "-"
		}
		errs := fmt.Sprint(o.Errors)
		if o.VerifyErrors > 0 {
			errs += fmt.Sprintf(" (%d verify)", o.VerifyErrors)
		}
		line := fmt.Sprintf("%s\t%d\t%.1f\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t", o.Op, o.Ops, o.OpsPerSec, mib,
			o.Latency.P50, o.Latency.P90, o.Latency.P99, o.Latency.P999, errs)
		if r.Baseline != nil {
			var parts []string
			for _, q := range o.VsBaseline {
				parts = append(parts, fmt.Sprintf("%.3fx %s", q.Ratio, q.Limit))
			}
			line += strings.Join(parts, ", ") + "\t"
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, o := range r.Operations {
		if o.Op == "LIST" {
			fmt.Fprintf(&b, "\nLIST: %d keys listed, %.0f keys/s\n", o.Keys, o.KeysPerSec)
		}
		switch {
		case o.Op == "LIST" && o.Verified > 0:
			fmt.Fprintf(&b, "LIST: %d full listings checked (key count, order, prefix), %d verification errors\n", o.Verified, o.VerifyErrors)
		case o.Verified > 0:
			fmt.Fprintf(&b, "%s: %d reads verified byte for byte, %d verification errors\n", o.Op, o.Verified, o.VerifyErrors)
		}
	}
	if !r.Total.Latency.Exact && r.Total.Ops > 0 {
		b.WriteString("(percentiles from the latency histogram, within 0.4%: too many samples to keep)\n")
	}
	if r.RanOutOfObjects {
		b.WriteString("DELETE ran out of pre-filled objects and stopped early; raise --objects.\n")
	}
	if r.Interrupted {
		b.WriteString("interrupted: figures cover the time until the interruption\n")
	}
	if r.Baseline != nil {
		b.WriteString("\n")
		r.Baseline.writeText(&b)
	}
	if len(r.ErrorSamples) > 0 {
		b.WriteString("\nerrors:\n")
		for _, e := range r.ErrorSamples {
			b.WriteString("  " + e + "\n")
		}
	}
	if r.CleanupError != "" {
		b.WriteString("\ncleanup incomplete: " + r.CleanupError + "\n")
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
