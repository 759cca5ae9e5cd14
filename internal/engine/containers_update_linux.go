package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// Update changes container ref's resource limits and restart policy as
// docker update does: zero fields of u are left as they are. The record
// changes only if a running container's cgroup took the new limits.
func (e *Engine) Update(ctx context.Context, ref string, u container.UpdateConfig) error {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	if rec.State.Status == store.StatusRemoving {
		return errdefs.Conflict(fmt.Errorf("Cannot update container %s: container is marked for removal and cannot be \"update\"", rec.ID))
	}
	updated, err := e.containers.Update(ctx, rec.ID, func(c *store.Container) error {
		hc := c.HostConfig
		if u.RestartPolicy.Name != "" {
			if hc.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
				return errdefs.InvalidArgument(errors.New("Restart policy cannot be updated because AutoRemove is enabled for the container"))
			}
			check := *hc
			check.RestartPolicy = u.RestartPolicy
			if err := validateHostConfig(&check); err != nil {
				return err
			}
		}
		r, err := mergeResources(hc.Resources, u.Resources)
		if err != nil {
			return errdefs.InvalidArgument(err)
		}
		res, err := e.linuxResources(r)
		if err != nil {
			return err
		}
		if c.Running() && c.State.Status != store.StatusRestarting && runtime.ProcessAlive(c.State.Pid, c.State.PidStart) {
			if err := e.updateLive(c, res); err != nil {
				return fmt.Errorf("Cannot update container %s: %w", c.ID, err)
			}
		}
		hc.Resources = r
		if u.RestartPolicy.Name != "" {
			hc.RestartPolicy = u.RestartPolicy
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.emit("update", updated, nil)
	return nil
}

// mergeResources applies docker update's non-zero fields to cur. When the
// memory limit changes without --memory-swap, the swap limit in force
// stays (twice the old limit when none was given, docker's default), and a
// memory limit above it is refused, as docker refuses it.
func mergeResources(cur, u container.Resources) (container.Resources, error) {
	r := cur
	if u.BlkioWeight != 0 {
		r.BlkioWeight = u.BlkioWeight
	}
	if u.CPUShares != 0 {
		r.CPUShares = u.CPUShares
	}
	if u.NanoCPUs != 0 {
		r.NanoCPUs = u.NanoCPUs
	}
	if u.CPUPeriod != 0 {
		r.CPUPeriod = u.CPUPeriod
	}
	if u.CPUQuota != 0 {
		r.CPUQuota = u.CPUQuota
	}
	if u.CPURealtimePeriod != 0 {
		r.CPURealtimePeriod = u.CPURealtimePeriod
	}
	if u.CPURealtimeRuntime != 0 {
		r.CPURealtimeRuntime = u.CPURealtimeRuntime
	}
	if u.CpusetCpus != "" {
		r.CpusetCpus = u.CpusetCpus
	}
	if u.CpusetMems != "" {
		r.CpusetMems = u.CpusetMems
	}
	oldSwap := cur.MemorySwap
	if cur.Memory > 0 && oldSwap == 0 {
		oldSwap = 2 * cur.Memory
	}
	if u.Memory != 0 {
		if u.MemorySwap == 0 && oldSwap > 0 && u.Memory > oldSwap {
			return r, errors.New("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
		}
		r.Memory = u.Memory
		r.MemorySwap = oldSwap
	}
	if u.MemorySwap != 0 {
		r.MemorySwap = u.MemorySwap
	}
	if r.Memory > 0 && r.MemorySwap == 0 {
		// Recorded as it is applied, so that a restart gives the same.
		r.MemorySwap = 2 * r.Memory
	}
	if u.MemoryReservation != 0 {
		r.MemoryReservation = u.MemoryReservation
	}
	if u.PidsLimit != nil {
		v := *u.PidsLimit
		r.PidsLimit = &v
	}
	return r, nil
}

// linuxResources checks r as docker run checks it and converts the limits
// docker update changes into the runtime spec's form. It asks spec for
// them (over an empty root) so that run and update never differ.
func (e *Engine) linuxResources(r container.Resources) (*specs.LinuxResources, error) {
	limits := container.Resources{
		Memory: r.Memory, MemorySwap: r.MemorySwap, MemoryReservation: r.MemoryReservation,
		CPUShares: r.CPUShares, NanoCPUs: r.NanoCPUs, CPUPeriod: r.CPUPeriod, CPUQuota: r.CPUQuota,
		CPURealtimePeriod: r.CPURealtimePeriod, CPURealtimeRuntime: r.CPURealtimeRuntime,
		CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems, PidsLimit: r.PidsLimit, BlkioWeight: r.BlkioWeight,
	}
	s, err := spec.Generate(spec.Input{
		Rootfs:     e.images.tmpDir(),
		Config:     &container.Config{Cmd: []string{"sh"}},
		HostConfig: &container.HostConfig{Resources: limits, NetworkMode: "none"},
	})
	if err != nil {
		return nil, errdefs.InvalidArgument(err)
	}
	if s.Linux == nil || s.Linux.Resources == nil {
		return &specs.LinuxResources{}, nil
	}
	res := s.Linux.Resources
	res.Devices = nil // device rules are start's business
	return res, nil
}

// updateLive gives the running container's cgroup the new limits.
func (e *Engine) updateLive(rec *store.Container, res *specs.LinuxResources) error {
	if rec.Runtime == "berth" {
		c, err := e.runtime().Load(rec.ID)
		if err != nil {
			return err
		}
		return c.Update(res)
	}
	bin, err := runtimeBinary(rec.Runtime)
	if err != nil {
		return err
	}
	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	root := filepath.Join(e.opts.RunRoot, "runtime-"+filepath.Base(bin))
	cmd := exec.Command(bin, "--root", root, "update", "--resources", "-", rec.ID)
	cmd.Stdin = bytes.NewReader(data)
	monitor.ExecLock.RLock()
	out, err := cmd.CombinedOutput()
	monitor.ExecLock.RUnlock()
	if err != nil {
		return fmt.Errorf("%s update: %s", filepath.Base(bin), strings.TrimSpace(lastLine(string(out), err)))
	}
	return nil
}
