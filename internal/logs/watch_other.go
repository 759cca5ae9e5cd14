//go:build !linux

package logs

import "errors"

// Elsewhere followers poll.
type inotify struct{ sleeper }

func newInotify(string) (*inotify, error) { return nil, errors.New("inotify is Linux-only") }

func (*inotify) close() {}
