package health

import "time"

// SetTimeout changes how long a change may wait before the node is
// unhealthy (a config reload with a new ipvs.syncPeriod).
func (t *Tracker) SetTimeout(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.timeout = d
}
