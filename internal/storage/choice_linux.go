package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// choice is the driver a storage root was created with, and why.
type choice struct {
	Driver string `json:"driver"`
	Reason string `json:"reason"`
}

// ReadDriverChoice returns the driver root was created with and the reason
// it was picked; name is "" for a root not created yet.
func ReadDriverChoice(root string) (name, reason string, err error) {
	var c choice
	if err := readJSON(filepath.Join(root, "driver"), &c); errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	} else if err != nil {
		return "", "", fmt.Errorf("storage root %s: driver choice: %w", root, err)
	}
	return c.Driver, c.Reason, nil
}

// RecordDriverChoice records that root uses driver name, unless a choice is
// recorded already; it returns the choice in force. Concurrent first uses of
// a root agree on one driver.
func RecordDriverChoice(root, name, reason string) (string, string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", "", fmt.Errorf("create storage root %s: %w", root, err)
	}
	lock, err := lockFile(filepath.Join(root, "lock"), true)
	if err != nil {
		return "", "", fmt.Errorf("lock storage root %s: %w", root, err)
	}
	defer lock.Unlock()
	if n, r, err := ReadDriverChoice(root); err != nil || n != "" {
		return n, r, err
	}
	data, _ := json.Marshal(choice{Driver: name, Reason: reason})
	if err := WriteFileAtomic(filepath.Join(root, "driver"), data, true); err != nil {
		return "", "", fmt.Errorf("storage root %s: record driver choice: %w", root, err)
	}
	return name, reason, nil
}
