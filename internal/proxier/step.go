package proxier

// SyncKind is the kind of one sync.
type SyncKind string

// The kinds of sync.
const (
	// FullSync re-reads the kernel, recomputes what changed (everything
	// when the node or the configuration changed) and plans the whole
	// difference: the first sync, the periodic one, and the one after a
	// failure of the node's.
	FullSync SyncKind = "full"
	// PartialSync plans only the changed Services and the failing Services
	// whose retry is due, against the believed kernel state: it reads nothing.
	PartialSync SyncKind = "partial"
	// DrainSync reads the connection counts of virtual servers holding
	// removed real servers at weight 0 and deletes those whose connections
	// have ended.
	DrainSync SyncKind = "drain"
)

// Step runs one sync of the given kind, at once, and returns what it did.
// A partial step runs as a full one when one is due (no full sync yet, the
// node or the configuration changed, the node's last sync failed): the
// returned Type says which ran. Step is deterministic given the changes the
// sources delivered, the kernel and the Clock; Run is a timer loop that
// calls it, and tests call it directly. Steps must not run concurrently
// with each other or with Run; sources may feed the proxier meanwhile.
func (p *Proxier) Step(kind SyncKind) SyncStats {
	switch kind {
	case DrainSync:
		return p.drainCheck()
	case FullSync:
		p.needFull = true
	}
	return p.sync()
}
