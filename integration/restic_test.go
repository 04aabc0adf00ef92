// restic_test.go: restic backing up into ringstore.
//
// Goal: a backup tool that leans on S3 semantics (create-if-missing bucket,
// many small and some multi-MiB objects, lock files written and deleted,
// prefix listings, ranged reads of pack files) works end to end: init,
// backup, snapshots, check --read-data, restore identical to the source, a
// second backup after changes, forget --prune, check again.
//
// Method: restic runs as a subprocess against s3:http://127.0.0.1:PORT/
// bucket/repo with the test credentials in AWS_* variables and
// RESTIC_PASSWORD; the source tree is a few MiB of random files.
package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestRestic(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "restic")
	srv := startServer(t, ServerOptions{LogLevel: "info"})
	dir := t.TempDir()
	b := bucketName(t)
	repo := "s3:" + srv.Endpoint() + "/" + b + "/repo"
	tool := toolRun{Bin: bin, Dir: dir, Env: awsEnv(dir,
		"RESTIC_PASSWORD=ringstore-restic-test",
		"RESTIC_CACHE_DIR="+filepath.Join(dir, "cache"),
	)}
	src := filepath.Join(dir, "src")
	for i := 0; i < 12; i++ {
		writeFile(t, src, fmt.Sprintf("dir%d/file-%02d.bin", i%3, i), randomBytes(10<<10+i*37<<10))
	}
	writeFile(t, src, "big/one.bin", randomBytes(3<<20+5))
	writeFile(t, src, "text/notes with space.txt", []byte("restic notes\n"))
	writeFile(t, src, "text/empty", nil)

	run := func(args ...string) string {
		t.Helper()
		return tool.must(t, append([]string{"-r", repo}, args...)...)
	}
	run("init")
	if r := srv.do(t, rawReq{Method: "HEAD", Bucket: b}); r.Status != 200 {
		t.Fatalf("restic init did not create the bucket (HEAD %d)", r.Status)
	}
	run("backup", "--host", "it", src)

	var snaps []struct {
		ID    string   `json:"id"`
		Paths []string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(run("snapshots", "--json")), &snaps); err != nil {
		t.Fatalf("restic snapshots --json: %v", err)
	}
	if len(snaps) != 1 || len(snaps[0].Paths) != 1 || snaps[0].Paths[0] != src {
		t.Fatalf("snapshots after one backup: %+v", snaps)
	}
	run("check", "--read-data")

	restore := filepath.Join(dir, "restore")
	run("restore", "latest", "--target", restore)
	compareTrees(t, treeDigest(t, src), treeDigest(t, filepath.Join(restore, src)))

	// Change the tree, back up again, forget the first snapshot and prune.
	writeFile(t, src, "dir0/file-00.bin", randomBytes(50<<10))
	os.Remove(filepath.Join(src, "dir1/file-01.bin"))
	writeFile(t, src, "new/added.bin", randomBytes(1<<20))
	run("backup", "--host", "it", src)
	run("forget", "--keep-last", "1", "--prune")
	if err := json.Unmarshal([]byte(run("snapshots", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 {
		t.Errorf("after forget --keep-last 1 there are %d snapshots", len(snaps))
	}
	run("check", "--read-data")
	restore2 := filepath.Join(dir, "restore2")
	run("restore", "latest", "--target", restore2)
	compareTrees(t, treeDigest(t, src), treeDigest(t, filepath.Join(restore2, src)))

	// No lock files are left behind.
	if locks := srv.listKeys(t, b, "repo/locks/"); len(locks) != 0 {
		t.Errorf("restic left lock objects: %q", locks)
	}
}
