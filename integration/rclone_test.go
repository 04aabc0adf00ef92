// rclone_test.go: rclone's S3 backend (provider Other) against ringstore.
//
// Goal: rclone can create a bucket, copy a tree up (including a file of
// several chunks and names with spaces, '+', '#', '%' and non-ASCII
// text), list it (lsf -R, ls), verify it (check, which compares sizes and
// MD5 hashes taken from ETags), copy it back identically, delete files and
// purge the bucket.
//
// Method: the remote "rs" is defined entirely by RCLONE_CONFIG_RS_*
// variables with an empty config file, AWS_CA_BUNDLE unset (rclone refuses
// to start with it set). Each step is an rclone subprocess; the results are
// checked against the local tree and against the server's own listing.
package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRclone(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "rclone")
	srv := startServer(t, ServerOptions{LogLevel: "info"})
	dir := t.TempDir()
	conf := writeFile(t, dir, "rclone.conf", nil)
	tool := toolRun{Bin: bin, Dir: dir, Env: toolEnv(
		"RCLONE_CONFIG_RS_TYPE=s3",
		"RCLONE_CONFIG_RS_PROVIDER=Other",
		"RCLONE_CONFIG_RS_ENDPOINT="+srv.Endpoint(),
		"RCLONE_CONFIG_RS_ACCESS_KEY_ID="+testAccessKey,
		"RCLONE_CONFIG_RS_SECRET_ACCESS_KEY="+testSecretKey,
		"RCLONE_CONFIG_RS_REGION="+testRegion,
	)}
	rclone := func(args ...string) string {
		t.Helper()
		return tool.must(t, append([]string{"--config", conf, "--retries", "1", "--low-level-retries", "1"}, args...)...)
	}
	b := bucketName(t)
	remote := "rs:" + b

	src := filepath.Join(dir, "src")
	files := map[string][]byte{
		"readme.txt":                  []byte("rclone test tree\n"),
		"docs/a b+c.txt":              []byte("spaces and plus"),
		"docs/hash#and%percent.txt":   []byte("hash and percent"),
		"docs/ünïcødé/日本語.txt":        []byte("unicode"),
		"data/chunky.bin":             randomBytes(3<<20 + 333),
		"data/medium.bin":             randomBytes(200 << 10),
		"data/nested/deeper/leaf.bin": randomBytes(70 << 10),
		"empty.txt":                   nil,
	}
	for rel, data := range files {
		writeFile(t, src, rel, data)
	}
	var want []string
	for rel := range files {
		want = append(want, rel)
	}
	slices.Sort(want)

	rclone("mkdir", remote)
	if r := srv.do(t, rawReq{Method: "HEAD", Bucket: b}); r.Status != 200 {
		t.Fatalf("rclone mkdir did not create the bucket (HEAD %d)", r.Status)
	}
	rclone("copy", src, remote+"/tree")
	if keys := srv.listKeys(t, b, "tree/"); len(keys) != len(files) {
		t.Errorf("after rclone copy the server lists %d keys under tree/, want %d: %q", len(keys), len(files), keys)
	}

	out := rclone("lsf", "-R", "--files-only", remote+"/tree")
	got := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("rclone lsf -R = %q, want %q", got, want)
	}
	out = rclone("ls", remote+"/tree")
	if want := fmt.Sprintf("%d data/chunky.bin", len(files["data/chunky.bin"])); !strings.Contains(out, want) {
		t.Errorf("rclone ls does not show %q:\n%s", want, tail(out, 10))
	}
	// check compares sizes and MD5 sums (from the ETags).
	rclone("check", src, remote+"/tree")
	if out := rclone("md5sum", remote+"/tree/data/chunky.bin"); !strings.HasPrefix(out, md5Hex(files["data/chunky.bin"])) {
		t.Errorf("rclone md5sum = %q, want %s", strings.TrimSpace(out), md5Hex(files["data/chunky.bin"]))
	}

	dst := filepath.Join(dir, "dst")
	rclone("copy", remote+"/tree", dst)
	compareTrees(t, treeDigest(t, src), treeDigest(t, dst))

	// Sync again after a change: only the changed file moves.
	writeFile(t, src, "readme.txt", []byte("changed readme, longer than before\n"))
	rclone("sync", src, remote+"/tree")
	rclone("check", src, remote+"/tree")

	// delete a subtree, then purge the bucket.
	rclone("delete", remote+"/tree/docs")
	if keys := srv.listKeys(t, b, "tree/docs/"); len(keys) != 0 {
		t.Errorf("after rclone delete, tree/docs/ still holds %q", keys)
	}
	if keys := srv.listKeys(t, b, "tree/"); len(keys) != len(files)-3 {
		t.Errorf("after rclone delete of docs/, %d keys remain, want %d", len(keys), len(files)-3)
	}
	rclone("purge", remote)
	if r := srv.do(t, rawReq{Method: "HEAD", Bucket: b}); r.Status != 404 {
		t.Errorf("bucket still there after rclone purge (HEAD %d)", r.Status)
	}
	_ = os.RemoveAll(dst)
}
