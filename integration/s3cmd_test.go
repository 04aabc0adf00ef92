// s3cmd_test.go: s3cmd against ringstore.
//
// Goal: s3cmd's basic workflow works with path-style addressing and
// SigV4: mb, put (a small file, a file with an awkward name, and a 20 MiB
// file that s3cmd uploads as a multipart upload in 15 MiB parts), ls and
// la, info, get, del, rb.
//
// Method: s3cmd runs with an empty temporary config file (-c) and every
// setting on its command line (--host, --host-bucket without %(bucket)s so
// it stays path-style, --no-ssl, --access_key, --secret_key, --region).
// Downloads are compared with the uploaded files.
package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestS3cmd(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "s3cmd")
	srv := startServer(t, ServerOptions{LogLevel: "info"})
	dir := t.TempDir()
	cfg := writeFile(t, dir, "s3cfg", []byte("[default]\nsignature_v2 = False\n"))
	tool := toolRun{Bin: bin, Env: toolEnv(), Dir: dir}
	common := []string{"-c", cfg, "--host", srv.Addr, "--host-bucket", srv.Addr, "--no-ssl",
		"--access_key", testAccessKey, "--secret_key", testSecretKey, "--region", testRegion,
		"--no-progress"}
	s3cmd := func(args ...string) string {
		t.Helper()
		return tool.must(t, append(append([]string{}, common...), args...)...)
	}
	s3cmdErr := func(args ...string) (string, error) {
		return tool.run(append(append([]string{}, common...), args...)...)
	}
	b := bucketName(t)
	s3url := "s3://" + b

	s3cmd("mb", s3url)
	if out := s3cmd("ls"); !strings.Contains(out, s3url) {
		t.Errorf("s3cmd ls does not list %s:\n%s", s3url, tail(out, 5))
	}

	small := []byte("hello from s3cmd\n")
	odd := randomBytes(1<<20 + 100) // two chunks
	writeFile(t, dir, "small.txt", small)
	writeFile(t, dir, "odd name+ü.bin", odd)
	s3cmd("put", filepath.Join(dir, "small.txt"), s3url+"/docs/small.txt")
	s3cmd("put", filepath.Join(dir, "odd name+ü.bin"), s3url+"/docs/odd name+ü.bin")

	out := s3cmd("ls", "--recursive", s3url)
	for _, want := range []string{s3url + "/docs/small.txt", s3url + "/docs/odd name+ü.bin"} {
		if !strings.Contains(out, want) {
			t.Errorf("s3cmd ls --recursive lacks %s:\n%s", want, tail(out, 10))
		}
	}
	if out := s3cmd("ls", s3url); !strings.Contains(out, "DIR") || !strings.Contains(out, s3url+"/docs/") {
		t.Errorf("s3cmd ls of the bucket root shows no docs/ directory:\n%s", tail(out, 5))
	}
	if out := s3cmd("info", s3url+"/docs/small.txt"); !strings.Contains(out, md5Hex(small)) {
		t.Errorf("s3cmd info does not show the MD5 %s:\n%s", md5Hex(small), tail(out, 12))
	}

	s3cmd("get", s3url+"/docs/small.txt", filepath.Join(dir, "small.down"))
	s3cmd("get", s3url+"/docs/odd name+ü.bin", filepath.Join(dir, "odd.down"))
	if got, _ := os.ReadFile(filepath.Join(dir, "small.down")); string(got) != string(small) {
		t.Errorf("s3cmd get small: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "odd.down")); sha256Hex(got) != sha256Hex(odd) {
		t.Errorf("s3cmd get of the odd-named file: content differs (%d bytes)", len(got))
	}

	t.Run("Multipart20MiB", func(t *testing.T) {
		big := randomBytes(20 << 20)
		writeFile(t, dir, "big.bin", big)
		if _, err := s3cmdErr("put", filepath.Join(dir, "big.bin"), s3url+"/big.bin"); err != nil {
			t.Fatalf("s3cmd put of 20 MiB (multipart, 15 MiB parts): %v", err)
		}
		s3cmd("get", s3url+"/big.bin", filepath.Join(dir, "big.down"))
		if got, _ := os.ReadFile(filepath.Join(dir, "big.down")); sha256Hex(got) != sha256Hex(big) {
			t.Errorf("20 MiB round trip: content differs (%d bytes)", len(got))
		}
		s3cmd("del", s3url+"/big.bin")
	})

	// rb refuses a non-empty bucket.
	if _, err := s3cmdErr("rb", s3url); err == nil {
		t.Errorf("s3cmd rb of a non-empty bucket succeeded")
	} else if !strings.Contains(err.Error(), "BucketNotEmpty") {
		t.Errorf("s3cmd rb of a non-empty bucket: %v, want BucketNotEmpty", err)
	}
	s3cmd("del", s3url+"/docs/small.txt")
	s3cmd("del", "--recursive", "--force", s3url+"/docs/")
	if keys := srv.listKeys(t, b, ""); len(keys) != 0 {
		t.Errorf("after s3cmd del the bucket still holds %q", keys)
	}
	s3cmd("rb", s3url)
	if r := srv.do(t, rawReq{Method: "HEAD", Bucket: b}); r.Status != 404 {
		t.Errorf("bucket still there after s3cmd rb (HEAD %d)", r.Status)
	}
}
