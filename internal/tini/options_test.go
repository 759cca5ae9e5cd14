package tini

import (
	"errors"
	"reflect"
	"syscall"
	"testing"
)

func testSigNum(name string) syscall.Signal {
	switch name {
	case "SIGTERM":
		return syscall.Signal(15)
	case "SIGKILL":
		return syscall.Signal(9)
	}
	return 0
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    options
		wantErr string
	}{
		{name: "dashdash", args: []string{"--", "sh", "-c", "x"}, want: options{cmd: []string{"sh", "-c", "x"}}},
		{name: "no dashdash", args: []string{"ls", "-l", "--", "x"}, want: options{cmd: []string{"ls", "-l", "--", "x"}}},
		{name: "group", args: []string{"-g", "--", "sleep", "1"}, want: options{group: true, cmd: []string{"sleep", "1"}}},
		{name: "options without dashdash", args: []string{"-g", "-s", "ls", "-g"}, want: options{group: true, subreaper: true, cmd: []string{"ls", "-g"}}},
		{name: "grouped flags", args: []string{"-gsvw", "--", "true"}, want: options{group: true, subreaper: true, cmd: []string{"true"}}},
		{name: "remap joined and split", args: []string{"-e3", "-e", "143", "--", "true"}, want: options{remap: []int{3, 143}, cmd: []string{"true"}}},
		{name: "pdeathsig name", args: []string{"-p", "SIGKILL", "true"}, want: options{pdeathsig: 9, cmd: []string{"true"}}},
		{name: "pdeathsig short name", args: []string{"-pterm", "true"}, want: options{pdeathsig: 15, cmd: []string{"true"}}},
		{name: "pdeathsig number", args: []string{"-p", "10", "true"}, want: options{pdeathsig: 10, cmd: []string{"true"}}},
		{name: "single dash is a program", args: []string{"-"}, want: options{cmd: []string{"-"}}},
		{name: "env", args: []string{"true"}, env: map[string]string{"TINI_SUBREAPER": "1", "TINI_KILL_PROCESS_GROUP": "1"},
			want: options{group: true, subreaper: true, cmd: []string{"true"}}},
		{name: "help", args: []string{"-h"}, wantErr: errHelp.Error()},
		{name: "no program", args: []string{"-g", "--"}, wantErr: "no program to run"},
		{name: "empty", args: nil, wantErr: "no program to run"},
		{name: "unknown option", args: []string{"-x", "true"}, wantErr: "unknown option -x"},
		{name: "missing value", args: []string{"-e"}, wantErr: "option -e needs a value"},
		{name: "bad exit code", args: []string{"-e", "300", "true"}, wantErr: `invalid exit code "300" for -e: want a number from 0 to 255`},
		{name: "bad signal", args: []string{"-p", "NOPE", "true"}, wantErr: `invalid signal "NOPE" for -p`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got, err := parseArgs(tt.args, getenv, testSigNum)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseArgs(%q) error = %v, want %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
	if _, err := parseArgs([]string{"-h"}, func(string) string { return "" }, testSigNum); !errors.Is(err, errHelp) {
		t.Errorf("-h: got %v, want errHelp", err)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		remap  []int
		exited bool
		status int
		sig    syscall.Signal
		want   int
	}{
		{name: "exit 0", exited: true, status: 0, want: 0},
		{name: "exit 3", exited: true, status: 3, want: 3},
		{name: "killed by TERM", sig: 15, want: 143},
		{name: "killed by KILL", sig: 9, want: 137},
		{name: "remapped exit", remap: []int{3}, exited: true, status: 3, want: 0},
		{name: "remapped signal", remap: []int{143}, sig: 15, want: 0},
		{name: "not remapped", remap: []int{3}, exited: true, status: 4, want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options{remap: tt.remap}
			if got := o.exitCode(tt.exited, tt.status, tt.sig); got != tt.want {
				t.Errorf("exitCode = %d, want %d", got, tt.want)
			}
		})
	}
}
