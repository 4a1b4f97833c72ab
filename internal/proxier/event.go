package proxier

import (
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

// Event returns the sync as the record programs read (package syncevent).
func (st SyncStats) Event() syncevent.Event {
	e := syncevent.Event{Type: st.Type, Start: st.Start, End: st.Start.Add(st.Duration), Services: st.Services,
		Ops: st.Ops, Failed: st.Failed, Messages: st.Messages, SinceChange: st.SinceChange, Phases: st.Phases, RetryAfter: st.RetryAfter,
		Failing: st.Failing}
	if len(st.Counts) > 0 {
		e.Applied = make(map[string]int, len(st.Counts))
		for k, n := range st.Counts {
			e.Applied[k.String()] = n
		}
	}
	for i, op := range st.Planned {
		if i == syncevent.MaxPlanned {
			e.PlannedOmitted = len(st.Planned) - i
			break
		}
		e.Planned = append(e.Planned, op.String())
	}
	for i, err := range unwrapJoined(st.Err) {
		if err == nil {
			continue
		}
		if i == syncevent.MaxErrors {
			break
		}
		e.Errors = append(e.Errors, err.Error())
	}
	return e
}
