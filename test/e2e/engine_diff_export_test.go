package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"
)

// berth diff lists what the writable layer added, changed and deleted;
// berth export writes the container's whole root as a tar.
func TestEngineDiffExport(t *testing.T) {
	e := newEngineEnv(t)
	e.must("run", "--name", "dc", "bb", "sh", "-c",
		"mkdir /newdir && echo hi > /newdir/f && echo changed >> /etc/passwd && rm /etc/group")
	diff := e.must("diff", "dc")
	for _, want := range []string{"A /newdir", "A /newdir/f", "C /etc", "C /etc/passwd", "D /etc/group"} {
		if !strings.Contains(diff, want+"\n") {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "/bin/busybox") {
		t.Errorf("diff lists an unchanged image file:\n%s", diff)
	}
	res := e.berth("export", "dc")
	if res.code != 0 {
		t.Fatalf("export: %d %s", res.code, res.stderr)
	}
	names := map[string]string{}
	tr := tar.NewReader(bytes.NewReader([]byte(res.stdout)))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("export is not a tar: %v", err)
		}
		data, _ := io.ReadAll(tr)
		names[strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")] = string(data)
	}
	if names["newdir/f"] != "hi\n" {
		t.Errorf("export: newdir/f = %q", names["newdir/f"])
	}
	if _, ok := names["bin/busybox"]; !ok {
		t.Errorf("export lacks the image's bin/busybox")
	}
	if _, ok := names["etc/group"]; ok {
		t.Errorf("export has the deleted etc/group")
	}
	// The root is unmounted again after exporting a stopped container.
	if n := unmountUnder(e.root); n > 0 {
		t.Errorf("export left %d mount(s)", n)
	}
	res = e.berth("diff", "nosuch")
	if res.code == 0 || !strings.Contains(res.stderr, "No such container") {
		t.Errorf("diff of a missing container: %d %s", res.code, res.stderr)
	}
}
