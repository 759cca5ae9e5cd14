// Package initproc is the code that runs inside a new container (or an exec
// into one) between clone and execve: it finishes the namespaces, builds the
// root filesystem, drops privileges and execs the user's program. The
// runtime's parent process talks to it over one socket: it sends a Config,
// answers hook requests, and reads "ready" or the error that stopped it.
package initproc

import (
	"encoding/json"
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Arg is the hidden first argument that makes the berth binary run Main.
const Arg = "__init"

// EnvSync names the environment variable holding the sync socket's fd.
const EnvSync = "_BERTH_SYNC"

// Mode says whether the process starts a container or joins one.
type Mode string

const (
	ModeInit Mode = "init"
	ModeExec Mode = "exec"
)

// Config is everything init needs, sent by the parent once the process is
// in its cgroup.
type Config struct {
	Mode Mode   `json:"mode"`
	ID   string `json:"id"`
	// Pid is this process's pid as the host (the runtime) sees it.
	Pid int `json:"pid"`
	// Spec is the container's spec. In exec mode Spec.Process is the process
	// to exec and the rest is the container's spec.
	Spec   *specs.Spec `json:"spec"`
	Rootfs string      `json:"rootfs,omitempty"`
	Bundle string      `json:"bundle,omitempty"`
	// NoPivot uses MS_MOVE + chroot instead of pivot_root (for ramfs roots).
	NoPivot bool `json:"noPivot,omitempty"`
	// SkipRootfs is set when init joined an existing mount namespace.
	SkipRootfs bool `json:"skipRootfs,omitempty"`
	// UnshareCgroupns asks init to unshare the cgroup namespace: only now,
	// inside its cgroup, does the namespace get the right root.
	UnshareCgroupns bool `json:"unshareCgroupns,omitempty"`
	// AwaitCgroup is set where the parent moves the process into its
	// cgroup after sending the config (cgroup v1, where the move waits for
	// an RCU grace period): init builds the rootfs meanwhile and waits
	// for MsgCgroup before it unshares the cgroup namespace or execs.
	AwaitCgroup bool `json:"awaitCgroup,omitempty"`
	// NewUserns is set when the container has a user namespace of its own.
	NewUserns bool `json:"newUserns,omitempty"`
	// Seccomp is a compiled filter (seccomp.Program.MarshalBinary), or nil.
	Seccomp []byte `json:"seccomp,omitempty"`
	// CgroupV1 maps each v1 controller to the container's cgroup directory
	// on the host, for cgroup mounts; CgroupV2 is the v2 directory.
	CgroupV1 map[string]string `json:"cgroupV1,omitempty"`
	CgroupV2 string            `json:"cgroupV2,omitempty"`
	// Fds passed by the parent: -1 when absent.
	FifoFD    int `json:"fifoFd"`
	ConsoleFD int `json:"consoleFd"`
	// PreserveFDs counts extra fds from 3 on to leave open for the program.
	PreserveFDs int `json:"preserveFds,omitempty"`
}

// Message is what init sends back.
type Message struct {
	Type  string `json:"type"` // MsgHooks, MsgReady or MsgError
	Error string `json:"error,omitempty"`
	Pid   int    `json:"pid,omitempty"`
}

const (
	MsgHooks = "hooks" // run prestart and createRuntime hooks, then answer MsgAck
	MsgReady = "ready"
	MsgError = "error"
	MsgAck   = "ack"
	// MsgCgroup tells init it is now in its cgroup (see AwaitCgroup).
	MsgCgroup = "cgroup"
)

// Channel is the sync socket seen from either side.
type Channel struct {
	dec *json.Decoder
	enc *json.Encoder
	// inCgroup records, on init's side, that MsgCgroup arrived.
	inCgroup bool
}

// NewChannel wraps the sync socket.
func NewChannel(rw io.ReadWriter) *Channel {
	return &Channel{dec: json.NewDecoder(rw), enc: json.NewEncoder(rw)}
}

// Send writes one message.
func (c *Channel) Send(v any) error { return c.enc.Encode(v) }

// Recv reads one message; io.EOF means the other side closed.
func (c *Channel) Recv(v any) error { return c.dec.Decode(v) }

// recvReply reads the parent's next answer, noting a MsgCgroup that may
// arrive before it.
func (c *Channel) recvReply(m *Message) error {
	for {
		if err := c.dec.Decode(m); err != nil {
			return err
		}
		if m.Type != MsgCgroup {
			return nil
		}
		c.inCgroup = true
	}
}

// waitCgroup returns once the parent has said init is in its cgroup.
func (c *Channel) waitCgroup() error {
	for !c.inCgroup {
		var m Message
		if err := c.dec.Decode(&m); err != nil {
			return fmt.Errorf("wait to be placed in the cgroup: %w", err)
		}
		if m.Type != MsgCgroup {
			return fmt.Errorf("unexpected message %q while waiting for the cgroup", m.Type)
		}
		c.inCgroup = true
	}
	return nil
}

// ErrorFromInit carries the error init reported, as a sentence for users.
type ErrorFromInit struct{ Msg string }

func (e *ErrorFromInit) Error() string { return e.Msg }

func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }
