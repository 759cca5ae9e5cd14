package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Prefixes of union bpf_attr for the commands used here (include/uapi/linux/bpf.h).
type bpfProgLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       ptr64
	license     ptr64
	logLevel    uint32
	logSize     uint32
	logBuf      ptr64
	kernVersion uint32
	progFlags   uint32
	progName    [16]byte
}

type bpfAttachAttr struct {
	targetFD    uint32
	attachBPFFD uint32
	attachType  uint32
	attachFlags uint32
}

type bpfQueryAttr struct {
	targetFD    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     ptr64
	progCnt     uint32
	_           uint32
}

type bpfGetFDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// setDeviceFilter attaches a device program for rules to the cgroup dir and
// detaches the programs that were there (on Update), new first so that no
// moment is unfiltered.
func setDeviceFilter(dir string, rules []deviceRule) error {
	prog, err := loadDeviceProgram(encodeProgram(deviceProgram(rules)))
	if err != nil {
		return err
	}
	defer unix.Close(prog)
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(cg)
	old, err := attachedPrograms(cg)
	if err != nil {
		return fmt.Errorf("query device programs: %w", err)
	}
	attach := bpfAttachAttr{targetFD: uint32(cg), attachBPFFD: uint32(prog), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return fmt.Errorf("attach device program: %w", err)
	}
	for _, id := range old {
		get := bpfGetFDAttr{id: id}
		fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("detach old device program %d: %w", id, err)
		}
		detach := bpfAttachAttr{targetFD: uint32(cg), attachBPFFD: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
		_, err = bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach))
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("detach old device program %d: %w", id, err)
		}
	}
	return nil
}

func loadDeviceProgram(code []byte) (int, error) {
	license := []byte("Apache\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(code) / 8),
		insns:    ptr64{p: unsafe.Pointer(&code[0])},
		license:  ptr64{p: unsafe.Pointer(&license[0])},
	}
	copy(attr.progName[:], "berth_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err == nil {
		return fd, nil
	}
	// Load again with the verifier's log, for the error.
	log := make([]byte, 64<<10)
	attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), ptr64{p: unsafe.Pointer(&log[0])}
	if fd, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 == nil {
		return fd, nil
	}
	if msg := bytes.TrimRight(log, "\x00\n"); len(msg) > 0 {
		if i := bytes.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return -1, fmt.Errorf("load device program (verifier: %s): %w", msg, err)
	}
	return -1, fmt.Errorf("load device program: %w", err)
}

// attachedPrograms lists the ids of device programs attached to cgroup fd cg itself.
func attachedPrograms(cg int) ([]uint32, error) {
	ids := make([]uint32, 64)
	q := bpfQueryAttr{targetFD: uint32(cg), attachType: unix.BPF_CGROUP_DEVICE, progIDs: ptr64{p: unsafe.Pointer(&ids[0])}, progCnt: uint32(len(ids))}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&q), unsafe.Sizeof(q))
	if err != nil {
		return nil, err
	}
	return ids[:q.progCnt], nil
}
