// Package e2e drives the built berth binary as users and real clients do.
// Every test runs as root with temporary state roots; it skips otherwise.
package e2e

import "os"

func readlink(p string) (string, error) { return os.Readlink(p) }
