package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// hostileSetup makes tmp/root (where layers go) and tmp/outside holding a
// sentinel file, and returns them.
func hostileSetup(t *testing.T) (tmp, root, outside string) {
	tmp = t.TempDir()
	root = filepath.Join(tmp, "root")
	outside = filepath.Join(tmp, "outside")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(outside, "sentinel"), "keep me")
	if err := os.Mkdir(filepath.Join(outside, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(outside, "sub", "inner"), "me too")
	return tmp, root, outside
}

// assertUntouched checks that tmp holds only root and outside, and that
// outside is as before.
func assertUntouched(t *testing.T, tmp, outside string, before map[string]string) {
	t.Helper()
	ents, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "root" && e.Name() != "outside" {
			t.Errorf("something landed next to the root: %s", e.Name())
		}
	}
	if d := diffSnapshots(before, snapshot(t, outside)); d != "" {
		t.Errorf("outside the root changed:\n%s", d)
	}
}

func TestApplyHostile(t *testing.T) {
	requireRoot(t)
	type tc struct {
		name    string
		entries func(outside string) []entry
		opts    ApplyOptions
		wantErr error  // nil: applied, and harmless
		wantMsg string // a substring of the error
	}
	cases := []tc{
		{name: "dotdot", entries: func(string) []entry { return []entry{fileE("../x", "pwned")} },
			wantErr: ErrEscape, wantMsg: `layer entry "../x": path escapes the layer root`},
		{name: "dotdot deep", entries: func(string) []entry { return []entry{fileE("../../etc/passwd", "pwned")} },
			wantErr: ErrEscape, wantMsg: `layer entry "../../etc/passwd": path escapes the layer root`},
		{name: "dotdot inside", entries: func(string) []entry { return []entry{dirE("a/"), fileE("a/../../outside/x", "pwned")} },
			wantErr: ErrEscape},
		{name: "absolute", entries: func(o string) []entry { return []entry{fileE(filepath.Join(o, "x"), "pwned")} },
			wantErr: ErrEscape, wantMsg: "absolute path escapes the layer root"},
		{name: "absolute dir", entries: func(o string) []entry { return []entry{dirE(o + "/newdir/")} },
			wantErr: ErrEscape},
		{name: "symlink to / then a file through it", entries: func(o string) []entry {
			return []entry{symlinkE("hostroot", "/"), fileE("hostroot"+o+"/pwned", "pwned")}
		}, wantErr: ErrEscape, wantMsg: "through a symlink"},
		{name: "absolute symlink then a file through it", entries: func(o string) []entry {
			return []entry{symlinkE("lnk", o), fileE("lnk/pwned", "pwned")}
		}, wantErr: ErrEscape},
		{name: "absolute symlink then overwrite through it", entries: func(o string) []entry {
			return []entry{symlinkE("lnk", o), fileE("lnk/sentinel", "pwned")}
		}, wantErr: ErrEscape},
		{name: "relative symlink escape", entries: func(string) []entry {
			return []entry{symlinkE("lnk", "../outside"), fileE("lnk/pwned", "pwned")}
		}, wantErr: ErrEscape},
		{name: "symlink chain escape", entries: func(string) []entry {
			return []entry{dirE("d/"), symlinkE("d/up", "../.."), symlinkE("l1", "d/up"), fileE("l1/outside/pwned", "pwned")}
		}, wantErr: ErrEscape},
		{name: "symlink chain escape in a directory entry", entries: func(string) []entry {
			return []entry{symlinkE("a", "b"), symlinkE("b", "c/../.."), dirE("c/"), dirE("a/outside/newdir/")}
		}, wantErr: ErrEscape},
		{name: "directory replaced by a symlink then written through", entries: func(o string) []entry {
			return []entry{dirE("d/"), fileE("d/f", "x"), symlinkE("d", o), fileE("d/pwned", "pwned")}
		}, wantErr: ErrEscape},
		{name: "hardlink to outside by dotdot", entries: func(string) []entry {
			return []entry{hardlinkE("h", "../outside/sentinel")}
		}, wantErr: ErrEscape, wantMsg: `hardlink target "../outside/sentinel"`},
		{name: "hardlink to outside by absolute path", entries: func(o string) []entry {
			return []entry{hardlinkE("h", filepath.Join(o, "sentinel"))}
		}, wantErr: ErrEscape},
		{name: "hardlink to outside through a symlink", entries: func(o string) []entry {
			return []entry{symlinkE("lnk", o), hardlinkE("h", "lnk/sentinel")}
		}, wantErr: ErrEscape},
		{name: "hardlink to outside through a relative symlink", entries: func(string) []entry {
			return []entry{symlinkE("lnk", "../outside"), hardlinkE("h", "lnk/sentinel")}
		}, wantErr: ErrEscape},
		{name: "huge header size", entries: func(string) []entry {
			e := fileE("big", "")
			e.hdr.Size = 1 << 50
			return []entry{e}
		}, wantErr: ErrTooLarge, wantMsg: `layer entry "big"`},
		{name: "device node with NoDevices", entries: func(string) []entry { return []entry{charE("dev/sda", 8, 0)} },
			opts: ApplyOptions{NoDevices: true}, wantErr: ErrDeviceRefused, wantMsg: `layer entry "dev/sda": device nodes are refused`},
		{name: "whiteout through a symlink", entries: func(o string) []entry {
			return []entry{symlinkE("lnk", o), fileE("lnk/.wh.sentinel", "")}
		}, wantErr: ErrEscape},
		{name: "overlay whiteout through a symlink", entries: func(o string) []entry {
			return []entry{symlinkE("lnk", o), fileE("lnk/.wh.sentinel", "")}
		}, opts: ApplyOptions{Whiteouts: WhiteoutOverlay}, wantErr: ErrEscape},
		{name: "opaque directory through a symlink", entries: func(o string) []entry {
			return []entry{symlinkE("lnk", o), fileE("lnk/.wh..wh..opq", "")}
		}, wantErr: ErrEscape},
		{name: "overlay opaque directory through a symlink", entries: func(o string) []entry {
			return []entry{symlinkE("lnk", o), fileE("lnk/.wh..wh..opq", "")}
		}, opts: ApplyOptions{Whiteouts: WhiteoutOverlay}, wantErr: ErrEscape},
		{name: "whiteout of dotdot", entries: func(string) []entry { return []entry{fileE(".wh..", "")} },
			wantErr: errBadEntry},
		// Not refused, and harmless: the symlink itself is replaced or linked.
		{name: "file over a symlink to outside replaces the symlink", entries: func(o string) []entry {
			return []entry{symlinkE("s", filepath.Join(o, "sentinel")), fileE("s", "pwned")}
		}},
		{name: "directory over a symlink to outside replaces the symlink", entries: func(o string) []entry {
			return []entry{symlinkE("s", o), dirE("s/")}
		}},
		{name: "hardlink to a symlink to outside links the symlink", entries: func(o string) []entry {
			return []entry{symlinkE("s", filepath.Join(o, "sentinel")), hardlinkE("h", "s")}
		}},
		{name: "relative symlink inside is followed", entries: func(string) []entry {
			return []entry{dirE("real/"), symlinkE("lnk", "real"), fileE("lnk/f", "ok")}
		}},
	}
	for _, walk := range []bool{false, true} {
		for _, c := range cases {
			name := c.name
			if walk {
				name = "walk/" + name
			}
			t.Run(name, func(t *testing.T) {
				if walk {
					noOpenat2.Store(true)
					t.Cleanup(func() { noOpenat2.Store(false) })
				}
				tmp, root, outside := hostileSetup(t)
				before := snapshot(t, outside)
				data := mkTar(t, c.entries(outside)...)
				_, err := Apply(context.Background(), root, bytes.NewReader(data), c.opts)
				t.Logf("Apply: %v", err)
				switch {
				case c.wantErr == nil && err != nil:
					t.Fatalf("unexpected error: %v", err)
				case c.wantErr != nil && err == nil:
					t.Fatalf("applied; want an error wrapping %v", c.wantErr)
				case c.wantErr != nil:
					if !errors.Is(err, c.wantErr) {
						t.Errorf("error %q does not wrap %q", err, c.wantErr)
					}
					var ee *EntryError
					if !errors.As(err, &ee) {
						t.Errorf("error %q is not an *EntryError", err)
					}
					if !errdefs.Is(err, errdefs.KindInvalidArgument) {
						t.Errorf("error %q is not classified InvalidArgument", err)
					}
					if c.wantMsg != "" && !strings.Contains(err.Error(), c.wantMsg) {
						t.Errorf("error %q lacks %q", err, c.wantMsg)
					}
				}
				assertUntouched(t, tmp, outside, before)
				if c.name == "relative symlink inside is followed" {
					if b, err := os.ReadFile(filepath.Join(root, "real", "f")); err != nil || string(b) != "ok" {
						t.Errorf("real/f = %q, %v", b, err)
					}
				}
			})
		}
	}
}

func TestApplyWhiteoutDelete(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	apply(t, root, mkTar(t,
		dirE("a/"), fileE("a/1", "1"), fileE("a/2", "2"),
		dirE("b/"), fileE("b/x", "x"),
		dirE("c/"), dirE("c/deep/"), fileE("c/deep/y", "y"), fileE("c/z", "z"),
		dirE("d/"), fileE("d/old", "old"), dirE("d/sub/"), fileE("d/sub/old", "old"),
		fileE("e", "e"),
	), ApplyOptions{})
	apply(t, root, mkTar(t,
		fileE("a/.wh.1", ""),
		fileE(".wh.b", ""),
		dirE("c/"), fileE("c/.wh..wh..opq", ""), fileE("c/new", "new"),
		// The opaque marker after some of the directory's new content.
		dirE("d/"), dirE("d/sub/"), fileE("d/sub/new", "new"), fileE("d/keep", "keep"), fileE("d/.wh..wh..opq", ""),
		fileE(".wh.nothere", ""),
		fileE("gone/.wh.x", ""),
		fileE(".wh..wh.plnk", ""),
	), ApplyOptions{})

	for _, p := range []string{"a/1", "b", "c/deep", "c/z", "d/old", "d/sub/old"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("%s survived its whiteout", p)
		}
	}
	for _, p := range []string{"a/2", "c/new", "d/keep", "d/sub/new", "e"} {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("%s is gone", p)
		}
	}
	for _, p := range []string{"gone", ".wh..wh.plnk", ".wh.nothere"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("%s was created", p)
		}
	}
}

func TestApplyWhiteoutOverlay(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	layer := mkTar(t,
		dirE("a/"), fileE("a/.wh.1", ""),
		dirE("c/"), fileE("c/.wh..wh..opq", ""), fileE("c/new", "new"),
		fileE("w/.wh.x", ""),           // parent not in the tar
		fileE(".wh.d", ""), dirE("d/"), // a directory over a whiteout: opaque, as overlayfs makes it
		entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "evil/", Mode: 0o755, ModTime: testTime,
			PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.user.ok": "1"}}},
	)
	apply(t, root, layer, ApplyOptions{Whiteouts: WhiteoutOverlay})

	for _, p := range []string{"a/1", "w/x"} {
		st := lstat(t, filepath.Join(root, p))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, want a 0/0 character device", p, st.Mode, st.Rdev)
		}
	}
	for _, p := range []string{"c", "d"} {
		if op, err := pathIsOpaque(filepath.Join(root, p)); err != nil || !op {
			t.Errorf("%s opaque = %v, %v; want true", p, op, err)
		}
	}
	if op, _ := pathIsOpaque(filepath.Join(root, "a")); op {
		t.Errorf("a is opaque")
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "evil"), "trusted.overlay.redirect", make([]byte, 64)); err == nil {
		t.Errorf("a layer set trusted.overlay.redirect")
	}
	if exists(filepath.Join(root, "c", ".wh..wh..opq")) || exists(filepath.Join(root, "a", ".wh.1")) {
		t.Errorf("whiteout files written literally")
	}
}

func TestApplyMetadata(t *testing.T) {
	requireRoot(t)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)
	atime := time.Date(2019, 6, 7, 8, 9, 10, 0, time.UTC)
	pax := func(e entry, recs map[string]string) entry {
		e.hdr.PAXRecords = recs
		e.hdr.Format = tar.FormatPAX
		return e
	}
	owned := func(e entry, uid, gid int, mode int64) entry {
		e.hdr.Uid, e.hdr.Gid, e.hdr.Mode = uid, gid, mode
		return e
	}

	dir := owned(dirE("d/"), 1000, 2000, 0o1777)
	dir.hdr.ModTime, dir.hdr.Format = mtime, tar.FormatPAX
	file := owned(fileE("d/suid", "#!/bin/sh\n"), 1000, 2000, 0o4755)
	file.hdr.ModTime, file.hdr.AccessTime, file.hdr.Format = mtime, atime, tar.FormatPAX
	link := owned(symlinkE("d/lnk", "suid"), 3000, 4000, 0o777)
	link.hdr.ModTime, link.hdr.Format = mtime, tar.FormatPAX
	fifo := entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "d/fifo", Mode: 0o640, Uid: 5, Gid: 6, ModTime: testTime}}
	null := owned(charE("d/null", 1, 3), 0, 0, 0o666)
	layer := mkTar(t,
		dir, file, hardlinkE("d/hard", "d/suid"), link, fifo, null,
		pax(fileE("d/x", "x"), map[string]string{"SCHILY.xattr.user.test": "value", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}),
		fileE("d/later", "written after the directory's times were read"),
	)
	root := t.TempDir()
	apply(t, root, layer, ApplyOptions{})

	st := lstat(t, filepath.Join(root, "d"))
	if st.Mode != unix.S_IFDIR|0o1777 || st.Uid != 1000 || st.Gid != 2000 {
		t.Errorf("d: mode %o owner %d:%d", st.Mode, st.Uid, st.Gid)
	}
	if got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); !got.Equal(mtime) {
		t.Errorf("d: mtime %v, want %v (set after its contents)", got, mtime)
	}
	st = lstat(t, filepath.Join(root, "d/suid"))
	if st.Mode != unix.S_IFREG|0o4755 || st.Uid != 1000 || st.Gid != 2000 || st.Nlink != 2 {
		t.Errorf("d/suid: mode %o owner %d:%d nlink %d", st.Mode, st.Uid, st.Gid, st.Nlink)
	}
	if got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); !got.Equal(mtime) {
		t.Errorf("d/suid: mtime %v, want %v", got, mtime)
	}
	if got := time.Unix(st.Atim.Sec, st.Atim.Nsec); !got.Equal(atime) {
		t.Errorf("d/suid: atime %v, want %v", got, atime)
	}
	if hst := lstat(t, filepath.Join(root, "d/hard")); hst.Ino != st.Ino {
		t.Errorf("d/hard is not a hardlink of d/suid")
	}
	st = lstat(t, filepath.Join(root, "d/lnk"))
	if target, _ := os.Readlink(filepath.Join(root, "d/lnk")); target != "suid" || st.Uid != 3000 || st.Gid != 4000 {
		t.Errorf("d/lnk: -> %q owner %d:%d", target, st.Uid, st.Gid)
	}
	if got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); !got.Equal(mtime) {
		t.Errorf("d/lnk: mtime %v, want %v", got, mtime)
	}
	if st = lstat(t, filepath.Join(root, "d/fifo")); st.Mode != unix.S_IFIFO|0o640 || st.Uid != 5 || st.Gid != 6 {
		t.Errorf("d/fifo: mode %o owner %d:%d", st.Mode, st.Uid, st.Gid)
	}
	if st = lstat(t, filepath.Join(root, "d/null")); st.Mode != unix.S_IFCHR|0o666 || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("d/null: mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(root, "d/x"), "user.test", buf); err != nil || string(buf[:n]) != "value" {
		t.Errorf("d/x user.test = %q, %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "d/x"), "security.capability", buf); err != nil {
		t.Errorf("d/x security.capability: %v", err)
	}
}

func TestApplyIDMap(t *testing.T) {
	requireRoot(t)
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e := fileE("f", "x")
	e.hdr.Uid, e.hdr.Gid = 1000, 1001
	root := t.TempDir()
	apply(t, root, mkTar(t, dirE("d/"), e), ApplyOptions{UIDMaps: maps, GIDMaps: maps})
	if st := lstat(t, filepath.Join(root, "f")); st.Uid != 101000 || st.Gid != 101001 {
		t.Errorf("f owner %d:%d, want 101000:101001", st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(root, "d")); st.Uid != 100000 || st.Gid != 100000 {
		t.Errorf("d owner %d:%d, want 100000:100000", st.Uid, st.Gid)
	}

	e.hdr.Uid = 70000
	_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(mkTar(t, e)), ApplyOptions{UIDMaps: maps, GIDMaps: maps})
	if err == nil || !strings.Contains(err.Error(), "uid 70000 has no mapping") {
		t.Errorf("unmapped uid: %v", err)
	}
}

func TestApplyReplaces(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	apply(t, root, mkTar(t,
		dirE("dir-to-file/"), fileE("dir-to-file/x", "x"),
		fileE("file-to-dir", "f"),
		fileE("linked", "shared"), hardlinkE("other", "linked"),
	), ApplyOptions{})
	apply(t, root, mkTar(t,
		fileE("dir-to-file", "now a file"),
		dirE("file-to-dir/"), fileE("file-to-dir/y", "y"),
		fileE("linked", "new content"),
	), ApplyOptions{})
	if b, _ := os.ReadFile(filepath.Join(root, "dir-to-file")); string(b) != "now a file" {
		t.Errorf("dir-to-file = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "file-to-dir/y")); string(b) != "y" {
		t.Errorf("file-to-dir/y = %q", b)
	}
	// A file replaced in a layer must not write through its old hardlinks.
	if b, _ := os.ReadFile(filepath.Join(root, "other")); string(b) != "shared" {
		t.Errorf("other = %q: written through the hardlink", b)
	}
}

func TestApplyCompressed(t *testing.T) {
	requireRoot(t)
	plain := mkTar(t, dirE("etc/"), fileE("etc/hostname", "berth\n"), fileE("big", strings.Repeat("layer data ", 200000)))
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	want := sha256.Sum256(plain)
	for name, data := range map[string][]byte{"plain": plain, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			h := sha256.New()
			n, err := Apply(context.Background(), root, bytes.NewReader(data), ApplyOptions{Tee: h})
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(plain)) {
				t.Errorf("size %d, want %d", n, len(plain))
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("tee saw a different stream")
			}
			if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "berth\n" {
				t.Errorf("etc/hostname = %q", b)
			}
		})
	}
}

func TestApplyTruncated(t *testing.T) {
	requireRoot(t)
	data := mkTar(t, fileE("f", strings.Repeat("x", 10000)))
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(data)
	gw.Close()
	for name, d := range map[string][]byte{"plain": data[:3000], "gzip": gz.Bytes()[:gz.Len()/2]} {
		t.Run(name, func(t *testing.T) {
			if _, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(d), ApplyOptions{}); err == nil {
				t.Fatal("a truncated layer applied")
			}
		})
	}
}

func TestApplyCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(mkTar(t, fileE("f", "x"))), ApplyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestApplyHostileCompressed(t *testing.T) {
	requireRoot(t)
	data := mkTar(t, fileE("ok", strings.Repeat("x", 3<<20)), fileE("../x", "pwned"), fileE("after", "x"))
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(data)
	gw.Close()
	tmp, root, outside := hostileSetup(t)
	before := snapshot(t, outside)
	_, err := Apply(context.Background(), root, bytes.NewReader(gz.Bytes()), ApplyOptions{})
	if !errors.Is(err, ErrEscape) {
		t.Fatalf("err = %v, want ErrEscape", err)
	}
	assertUntouched(t, tmp, outside, before)
	if exists(filepath.Join(root, "after")) {
		t.Errorf("Apply went on after a refusal")
	}
}

func TestApplyRootEntry(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	e := dirE("./")
	e.hdr.Mode, e.hdr.Uid = 0o700, 42
	apply(t, root, mkTar(t, e, fileE("./f", "x")), ApplyOptions{})
	if st := lstat(t, root); st.Mode != unix.S_IFDIR|0o700 || st.Uid != 42 {
		t.Errorf("root: mode %o uid %d", st.Mode, st.Uid)
	}
	if st := lstat(t, root); st.Mtim.Sec != testTime.Unix() {
		t.Errorf("root mtime %d, want %d", st.Mtim.Sec, testTime.Unix())
	}
	_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(mkTar(t, fileE(".", ""))), ApplyOptions{})
	if err == nil {
		t.Errorf("a file as the root applied")
	}
}
