package initproc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// RunHooks runs each hook in order with the container's state on stdin, as
// the runtime spec says; the first failure stops the rest.
func RunHooks(phase string, hooks []specs.Hook, state *specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		if err := runHook(h, data); err != nil {
			return fmt.Errorf("hooks.%s[%d] %s: %w", phase, i, h.Path, err)
		}
	}
	return nil
}

func runHook(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = h.Args
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

func stateForHooks(cfg *Config, status specs.ContainerState) *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          cfg.ID,
		Status:      status,
		Pid:         cfg.Pid,
		Bundle:      cfg.Bundle,
		Annotations: cfg.Spec.Annotations,
	}
}

// hooksFromInit asks the parent to run prestart and createRuntime hooks (in
// the runtime's namespaces), then runs createContainer hooks here, in the
// container's namespaces before pivot_root.
func hooksFromInit(cfg *Config, ch *Channel) error {
	if err := ch.Send(Message{Type: MsgHooks}); err != nil {
		return err
	}
	var ack Message
	if err := ch.recvReply(&ack); err != nil {
		return fmt.Errorf("wait for createRuntime hooks: %w", err)
	}
	if ack.Type != MsgAck {
		return fmt.Errorf("createRuntime hooks failed: %s", ack.Error)
	}
	if cfg.Spec.Hooks != nil {
		return RunHooks("createContainer", cfg.Spec.Hooks.CreateContainer, stateForHooks(cfg, specs.StateCreating))
	}
	return nil
}
