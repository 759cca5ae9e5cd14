package engine

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// phaseTimer logs how long each phase of a start or an exit took, to the
// monitor's log, when BERTH_TRACE is set: where the time goes, measured.
type phaseTimer struct {
	on    bool
	start time.Time
	last  time.Time
	parts []string
}

// NewPhaseTimer is newPhaseTimer for the CLI.
func NewPhaseTimer() *PhaseTimer { return newPhaseTimer() }

// PhaseTimer is exported for the CLI's own phases.
type PhaseTimer = phaseTimer

// Mark ends a phase.
func (p *phaseTimer) Mark(name string) { p.mark(name) }

// Done logs the phases.
func (p *phaseTimer) Done(what string) { p.done(what) }

func newPhaseTimer() *phaseTimer {
	if os.Getenv("BERTH_TRACE") == "" {
		return &phaseTimer{}
	}
	now := time.Now()
	return &phaseTimer{on: true, start: now, last: now}
}

func (p *phaseTimer) mark(name string) {
	if !p.on {
		return
	}
	now := time.Now()
	p.parts = append(p.parts, fmt.Sprintf("%s=%.2fms", name, float64(now.Sub(p.last).Microseconds())/1000))
	p.last = now
}

func (p *phaseTimer) done(what string) {
	if !p.on {
		return
	}
	fmt.Fprintf(os.Stderr, "trace %s total=%.2fms %s\n", what, float64(time.Since(p.start).Microseconds())/1000, strings.Join(p.parts, " "))
}
