// Package nsenter joins existing namespaces before the Go runtime starts.
//
// setns(2) into a mount or user namespace needs a single-threaded process,
// which a running Go program never is. Importing this package links a small
// C constructor that runs before the Go runtime and, only when the
// environment asks for it (_BERTH_NSENTER), joins the namespaces named there,
// unshares new ones, and forks once more when a PID namespace changes. This
// is the one place berth uses C.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
extern void berth_nsenter(void);
void __attribute__((constructor)) berth_nsenter_init(void) { berth_nsenter(); }
*/
import "C"

// Environment variables read by the constructor; the runtime sets them on
// the init or exec process it starts.
const (
	// EnvJoin is a comma-separated list of "type:path" to setns into, user first.
	EnvJoin = "_BERTH_NSENTER"
	// EnvUnshare is the decimal CLONE_NEW* mask to unshare after joining.
	EnvUnshare = "_BERTH_NSUNSHARE"
	// EnvSync is the fd number of the socket shared with the parent.
	EnvSync = "_BERTH_NSSYNC"
)

// Messages the constructor writes on the sync socket, one byte each. After
// MsgPid come 4 bytes: the pid (host view) of the process that goes on into
// Go, in native byte order.
const (
	MsgMapRequest = 'U' // unshared a user namespace: parent writes uid/gid maps, answers MsgMapDone
	MsgMapDone    = 'u'
	MsgPid        = 'P'
	MsgError      = 'E' // followed by a NUL-terminated message
)
