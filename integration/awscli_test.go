// awscli_test.go: the aws command line tool, v2 (/usr/bin/aws) and v1 (an
// `aws` on PATH that reports aws-cli/1.x), against ringstore.
//
// Goal: the everyday CLI workflows work: s3 mb, cp up and down (a small
// file, and a 20 MiB file which the CLI uploads as a multipart upload), ls
// --recursive, sync both ways (and again after a change, and --delete),
// rm --recursive, s3api put-object / head-object / get-object --range,
// list-objects-v2 with --encoding-type url over odd keys, and rb.
//
// Method: each CLI version gets its own server and runs as a subprocess
// with the test credentials in AWS_* variables, its config files pointed
// at an empty temp dir, and --endpoint-url. Results are checked by reading
// files back and parsing the CLI's JSON output.
package integration

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// awsCLIs returns the aws CLI binaries to test by version label.
func awsCLIs(t *testing.T) map[string]string {
	out := map[string]string{}
	if _, err := os.Stat("/usr/bin/aws"); err == nil {
		out["v2"] = "/usr/bin/aws"
	}
	if p, err := exec.LookPath("aws"); err == nil {
		if v, err := exec.Command(p, "--version").CombinedOutput(); err == nil {
			switch {
			case strings.HasPrefix(string(v), "aws-cli/1."):
				out["v1"] = p
			case strings.HasPrefix(string(v), "aws-cli/2.") && out["v2"] == "":
				out["v2"] = p
			}
		}
	}
	return out
}

func TestAWSCLI(t *testing.T) {
	t.Parallel()
	clis := awsCLIs(t)
	for _, version := range []string{"v2", "v1"} {
		t.Run(version, func(t *testing.T) {
			bin, ok := clis[version]
			if !ok {
				if version == "v2" {
					needTool(t, "/usr/bin/aws") // skips, or fails under CI
				}
				t.Skipf("no aws CLI %s on this machine (an `aws` on PATH reporting aws-cli/1.x is tested when present)", version)
			}
			t.Parallel()
			testAWSCLI(t, bin)
		})
	}
}

func testAWSCLI(t *testing.T, bin string) {
	srv := startServer(t, ServerOptions{LogLevel: "info"})
	dir := t.TempDir()
	cli := toolRun{Bin: bin, Env: awsEnv(dir), Dir: dir}
	// A short read timeout bounds the cost of a response the CLI waits
	// for in vain (botocore's default is 60 s, and it then retries).
	common := []string{"--endpoint-url", srv.Endpoint(), "--cli-read-timeout", "10"}
	aws := func(args ...string) string {
		t.Helper()
		return cli.must(t, append(common, args...)...)
	}
	awsErr := func(args ...string) (string, error) {
		return cli.run(append(common, args...)...)
	}
	b := bucketName(t)
	s3url := "s3://" + b

	aws("s3", "mb", s3url)
	if out := aws("s3", "ls"); !strings.Contains(out, b) {
		t.Errorf("s3 ls does not list the new bucket %s:\n%s", b, tail(out, 5))
	}

	// Small file up and down.
	small := []byte("small file from the aws cli\n")
	writeFile(t, dir, "up/small.txt", small)
	aws("s3", "cp", filepath.Join(dir, "up/small.txt"), s3url+"/files/small.txt")
	aws("s3", "cp", s3url+"/files/small.txt", filepath.Join(dir, "down/small.txt"))
	if got, _ := os.ReadFile(filepath.Join(dir, "down/small.txt")); string(got) != string(small) {
		t.Errorf("small file round trip: got %q", got)
	}

	// A tree, synced up and back down.
	tree := filepath.Join(dir, "tree")
	writeFile(t, tree, "a.txt", []byte("a"))
	writeFile(t, tree, "sub/b.bin", randomBytes(200<<10))
	writeFile(t, tree, "sub/deeper/c with space.txt", []byte("c"))
	writeFile(t, tree, "ünï/cöde+plus.txt", []byte("unicode"))
	writeFile(t, tree, "sub/chunky.bin", randomBytes(2<<20+1))
	writeFile(t, tree, "empty", nil)
	aws("s3", "sync", tree, s3url+"/tree")
	down := filepath.Join(dir, "tree-down")
	aws("s3", "sync", s3url+"/tree", down)
	compareTrees(t, treeDigest(t, tree), treeDigest(t, down))
	// A second sync after one change uploads just that file.
	writeFile(t, tree, "sub/deeper/c with space.txt", []byte("changed, and longer"))
	out := aws("s3", "sync", tree, s3url+"/tree")
	if n := strings.Count(out, "upload:"); n != 1 {
		t.Errorf("second sync after one change made %d uploads, want 1:\n%s", n, tail(out, 8))
	}
	// sync --delete removes what is gone locally.
	os.Remove(filepath.Join(tree, "a.txt"))
	aws("s3", "sync", "--delete", tree, s3url+"/tree")
	os.RemoveAll(down)
	aws("s3", "sync", s3url+"/tree", down)
	compareTrees(t, treeDigest(t, tree), treeDigest(t, down))

	// ls --recursive.
	out = aws("s3", "ls", "--recursive", s3url)
	var listed []string
	lsLine := regexp.MustCompile(`^\S+ \S+ +\d+ (.*)$`) // "2024-01-02 03:04:05       1234 key"
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if m := lsLine.FindStringSubmatch(line); m != nil {
			listed = append(listed, m[1])
		}
	}
	slices.Sort(listed)
	want := []string{"files/small.txt", "tree/empty", "tree/sub/b.bin", "tree/sub/chunky.bin", "tree/sub/deeper/c with space.txt", "tree/ünï/cöde+plus.txt"}
	if !slices.Equal(listed, want) {
		t.Errorf("s3 ls --recursive lists %q, want %q", listed, want)
	}

	// s3api: put-object with headers, head-object, get-object --range.
	body := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	writeFile(t, dir, "api.txt", body)
	aws("s3api", "put-object", "--bucket", b, "--key", "api/obj 1", "--body", filepath.Join(dir, "api.txt"),
		"--content-type", "text/x-api", "--metadata", "origin=cli,flavour=plain", "--cache-control", "no-cache")
	var head struct {
		ContentLength int64
		ETag          string
		ContentType   string
		CacheControl  string
		Metadata      map[string]string
	}
	if err := json.Unmarshal([]byte(aws("s3api", "head-object", "--bucket", b, "--key", "api/obj 1", "--output", "json")), &head); err != nil {
		t.Fatalf("head-object output: %v", err)
	}
	if head.ContentLength != int64(len(body)) || head.ETag != `"`+md5Hex(body)+`"` || head.ContentType != "text/x-api" || head.CacheControl != "no-cache" {
		t.Errorf("head-object = %+v", head)
	}
	// S3 keeps user metadata names in lower case and sends them so
	// (x-amz-meta-origin); botocore keeps the case of the header names it
	// receives, so boto3 and the CLI show what the server sent.
	if head.Metadata["origin"] != "cli" || head.Metadata["flavour"] != "plain" {
		t.Errorf("head-object Metadata = %v, want {origin: cli, flavour: plain} (lower-case names, as S3 returns them)", head.Metadata)
	}
	var ranged struct{ ContentRange string }
	rangeOut := filepath.Join(dir, "range.out")
	if err := json.Unmarshal([]byte(aws("s3api", "get-object", "--bucket", b, "--key", "api/obj 1", "--range", "bytes=5-14", rangeOut, "--output", "json")), &ranged); err != nil {
		t.Fatalf("get-object output: %v", err)
	}
	if got, _ := os.ReadFile(rangeOut); string(got) != "56789abcde" || ranged.ContentRange != "bytes 5-14/36" {
		t.Errorf("get-object --range bytes=5-14: %q, ContentRange %q", got, ranged.ContentRange)
	}
	if _, err := awsErr("s3api", "head-object", "--bucket", b, "--key", "api/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("head-object of a missing key: %v, want a 404 error", err)
	}

	// list-objects-v2 with --encoding-type url over odd keys.
	oddKeys := []string{"odd/a b+c", "odd/ü€日本", "odd/100%", "odd/q?x#y", "odd/amp&lt", "odd/dir/", "odd/tilde~star*"}
	for _, k := range oddKeys {
		srv.mustPut(t, b, k, body)
	}
	slices.Sort(oddKeys)
	var lst struct {
		Contents     []struct{ Key string }
		EncodingType string
	}
	// --no-paginate keeps the whole response, EncodingType included. The
	// CLI leaves the keys encoded when the caller asked for the encoding.
	if err := json.Unmarshal([]byte(aws("s3api", "list-objects-v2", "--no-paginate", "--bucket", b, "--prefix", "odd/", "--encoding-type", "url", "--output", "json")), &lst); err != nil {
		t.Fatalf("list-objects-v2 output: %v", err)
	}
	if lst.EncodingType != "url" {
		t.Errorf("list-objects-v2 --encoding-type url: response EncodingType %q, want url", lst.EncodingType)
	}
	var got []string
	for _, c := range lst.Contents {
		k, err := url.QueryUnescape(c.Key)
		if err != nil {
			t.Errorf("list-objects-v2 --encoding-type url: key %q is not url-encoded", c.Key)
		}
		got = append(got, k)
	}
	if !slices.Equal(got, oddKeys) {
		t.Errorf("list-objects-v2 --encoding-type url: keys %q (EncodingType %q), want %q", got, lst.EncodingType, oddKeys)
	}
	// Without --encoding-type the CLI asks for url itself and decodes.
	lst.Contents = nil
	if err := json.Unmarshal([]byte(aws("s3api", "list-objects-v2", "--bucket", b, "--prefix", "odd/", "--output", "json")), &lst); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, c := range lst.Contents {
		got = append(got, c.Key)
	}
	if !slices.Equal(got, oddKeys) {
		t.Errorf("list-objects-v2: keys %q, want %q", got, oddKeys)
	}

	// rm --recursive.
	aws("s3", "rm", "--recursive", s3url+"/tree")
	if keys := srv.listKeys(t, b, "tree/"); len(keys) != 0 {
		t.Errorf("after s3 rm --recursive, tree/ still holds %q", keys)
	}

	// An empty file, then another file, over one connection. botocore sends
	// every PUT with "Expect: 100-continue"; when a server answers one with
	// a final status and no interim 100 Continue (as Go's net/http does for
	// an empty body) on a connection it keeps open, botocore keeps that
	// status line for every later response on the connection, misreads the
	// next response and waits out its read timeout (then retries). S3
	// itself does not trigger this: the CLI must not stall.
	t.Run("EmptyFileThenAnother", func(t *testing.T) {
		cdir := t.TempDir()
		writeFile(t, cdir, "aws-config", []byte("[default]\ns3 =\n  max_concurrent_requests = 1\n"))
		seq := toolRun{Bin: bin, Env: awsEnv(cdir), Dir: cdir}
		src := filepath.Join(cdir, "src")
		writeFile(t, src, "0-empty", nil)
		writeFile(t, src, "1-small", []byte("after the empty one"))
		writeFile(t, src, "2-small", []byte("and another"))
		start := time.Now()
		if _, err := seq.run("--endpoint-url", srv.Endpoint(), "--cli-read-timeout", "5", "s3", "cp", "--recursive", src, s3url+"/seq"); err != nil {
			t.Fatalf("s3 cp --recursive of an empty and two small files: %v", err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("s3 cp --recursive of an empty file and two small files, one at a time, took %v: "+
				"the CLI waited out its read timeout after the empty PUT (answered without 100 Continue, connection kept open)", d.Round(time.Millisecond))
		}
		if keys := srv.listKeys(t, b, "seq/"); len(keys) != 3 {
			t.Errorf("seq/ holds %q, want 3 keys", keys)
		}
		if _, err := seq.run("--endpoint-url", srv.Endpoint(), "s3", "rm", "--recursive", s3url+"/seq"); err != nil {
			t.Error(err)
		}
	})

	// A 20 MiB file: the CLI uploads it as a multipart upload (8 MiB parts).
	t.Run("Multipart20MiB", func(t *testing.T) {
		big := randomBytes(20 << 20)
		writeFile(t, dir, "big.bin", big)
		if _, err := awsErr("s3", "cp", filepath.Join(dir, "big.bin"), s3url+"/big/big.bin"); err != nil {
			t.Fatalf("s3 cp of a 20 MiB file (multipart upload): %v", err)
		}
		aws("s3", "cp", s3url+"/big/big.bin", filepath.Join(dir, "big.down"))
		if got, _ := os.ReadFile(filepath.Join(dir, "big.down")); sha256Hex(got) != sha256Hex(big) {
			t.Errorf("20 MiB round trip: content differs (%d bytes)", len(got))
		}
	})

	// rb: refused while not empty, then --force.
	if _, err := awsErr("s3", "rb", s3url); err == nil || !strings.Contains(err.Error(), "BucketNotEmpty") {
		t.Errorf("s3 rb of a non-empty bucket: %v, want BucketNotEmpty", err)
	}
	aws("s3", "rb", "--force", s3url)
	if out := aws("s3", "ls"); strings.Contains(out, b) {
		t.Errorf("s3 ls still lists %s after rb --force", b)
	}
}
