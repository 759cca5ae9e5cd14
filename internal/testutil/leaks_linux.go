package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CheckNoLeaks fails t if a mount under any of dirs, a cgroup directory
// named like any of names, or a process whose command line mentions any of
// dirs is still there. Call it from a cleanup, after removing containers.
func CheckNoLeaks(t testing.TB, dirs []string, names []string) {
	t.Helper()
	func() {
		if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
			for _, line := range strings.Split(string(mi), "\n") {
				for _, d := range dirs {
					if d != "" && strings.Contains(line, d) {
						t.Errorf("leaked mount: %s", line)
					}
				}
			}
		}
		for _, n := range names {
			matches, _ := filepath.Glob("/sys/fs/cgroup/*/" + n)
			more, _ := filepath.Glob("/sys/fs/cgroup/" + n)
			for _, m := range append(matches, more...) {
				t.Errorf("leaked cgroup: %s", m)
			}
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			cmd := strings.ReplaceAll(string(data), "\x00", " ")
			for _, d := range dirs {
				if d != "" && strings.Contains(cmd, d) {
					t.Errorf("leaked process %s: %s", filepath.Base(filepath.Dir(p)), cmd)
				}
			}
		}
	}()
}
