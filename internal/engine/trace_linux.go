package engine

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// PhaseTimer logs how long each phase of a start or an exit took, to the
// monitor's log, when BERTH_TRACE is set: where the time goes, measured.
type PhaseTimer struct {
	on    bool
	start time.Time
	last  time.Time
	parts []string
}

// NewPhaseTimer starts timing; it does nothing unless BERTH_TRACE is set.
func NewPhaseTimer() *PhaseTimer {
	if os.Getenv("BERTH_TRACE") == "" {
		return &PhaseTimer{}
	}
	now := time.Now()
	return &PhaseTimer{on: true, start: now, last: now}
}

// Mark ends the phase called name.
func (p *PhaseTimer) Mark(name string) {
	if !p.on {
		return
	}
	now := time.Now()
	p.parts = append(p.parts, fmt.Sprintf("%s=%.2fms", name, float64(now.Sub(p.last).Microseconds())/1000))
	p.last = now
}

// Done logs the phases of what.
func (p *PhaseTimer) Done(what string) {
	if !p.on {
		return
	}
	fmt.Fprintf(os.Stderr, "trace %s total=%.2fms %s\n", what, float64(time.Since(p.start).Microseconds())/1000, strings.Join(p.parts, " "))
}
