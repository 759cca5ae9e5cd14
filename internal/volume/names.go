package volume

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// NameChars is docker's pattern for the characters of a volume name, as its
// error messages quote it.
const NameChars = "[a-zA-Z0-9][a-zA-Z0-9_.-]"

// AnonymousLabel marks a volume created without a name (docker's label):
// prune removes only these unless asked for all.
const AnonymousLabel = "com.docker.volume.anonymous"

// ValidateName checks name against docker's rule for local volumes: at
// least two characters, the first alphanumeric, the rest alphanumeric or
// one of "_.-". A byte loop, not a regexp: no work at package init.
func ValidateName(name string) error {
	if len(name) == 1 {
		return errdefs.InvalidArgument(fmt.Errorf("volume name is too short, names should be at least two alphanumeric characters"))
	}
	ok := len(name) >= 2
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return errdefs.InvalidArgument(fmt.Errorf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, NameChars))
	}
	return nil
}

// randomName is an anonymous volume's name: 64 hex digits, as docker's.
func randomName() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate volume name: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ValidateDriver accepts docker's local driver ("" means it); berth has no
// volume plugins, so any other name is not found, as docker says of a
// plugin it lacks.
func ValidateDriver(driver string) error {
	if driver == "" || driver == "local" {
		return nil
	}
	return errdefs.NotFound(fmt.Errorf("error looking up volume plugin %s: plugin %q not found", driver, driver))
}
