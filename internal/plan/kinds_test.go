package plan

import (
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TestKindTable: every kind has its row, with a name of its own, and the
// IPVS rows say what the applier relies on (adds retried as edits, deletes
// of what is gone done, all six in one batch, SetTimeouts on its own).
func TestKindTable(t *testing.T) {
	seen := map[string]Kind{}
	for k := Kind(0); k < numKinds; k++ {
		row := kinds[k]
		if row.name == "" || (row.describe == nil && row.sub != SubNFTables) {
			t.Errorf("kind %d has no row", k)
		}
		if o, dup := seen[row.name]; dup {
			t.Errorf("kinds %d and %d are both %q", o, k, row.name)
		}
		seen[row.name] = k
	}
	for add, edit := range map[Kind]Kind{AddVS: EditVS, AddRS: EditRS} {
		if add.RetryAs() != edit || edit.RetryAs() != edit {
			t.Errorf("%s retried as %s", add, add.RetryAs())
		}
	}
	cmds := map[Kind]string{AddVS: "-A", EditVS: "-E", DelVS: "-D", AddRS: "-a", EditRS: "-e", DelRS: "-d"}
	for k := Kind(0); k < numKinds; k++ {
		if k.IpvsadmFlag() != cmds[k] {
			t.Errorf("%s is ipvsadm %q, want %q", k, k.IpvsadmFlag(), cmds[k])
		}
		if (cmds[k] != "") != (Batchable(k, AddVS) && k.Subsystem() == SubIPVS) {
			t.Errorf("%s batched with the IPVS writes: %v", k, Batchable(k, AddVS))
		}
	}
	if Batchable(SetTimeouts, AddVS) || Batchable(AddEntry, AddAddress) || !Batchable(DelEntry, AddEntry) || !DelVS.GoneIsDone() || AddVS.ExistsIsDone() {
		t.Error("batching or idempotence of a kind changed")
	}
}

// TestOpStrings: each IPVS kind renders with its ipvsadm flag.
func TestOpStrings(t *testing.T) {
	vs := state.VirtualServer{Key: state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr("10.96.0.10"), Port: 53}, Scheduler: "rr"}
	rs := state.RealServer{Key: state.RSKey{Addr: netip.MustParseAddr("10.244.1.7"), Port: 53}, Weight: 1}
	for _, c := range []struct {
		op   Op
		want string
	}{
		{Op{Kind: AddVS, VS: vs}, "add-vs -A -t 10.96.0.10:53 -s rr"},
		{Op{Kind: EditVS, VS: vs}, "edit-vs -E -t 10.96.0.10:53 -s rr"},
		{Op{Kind: DelVS, VS: vs}, "del-vs -D -t 10.96.0.10:53"},
		{Op{Kind: AddRS, VS: vs, RS: rs}, "add-rs -a -t 10.96.0.10:53 -r 10.244.1.7:53 -m -w 1"},
		{Op{Kind: EditRS, VS: vs, RS: rs}, "edit-rs -e -t 10.96.0.10:53 -r 10.244.1.7:53 -m -w 1"},
		{Op{Kind: DelRS, VS: vs, RS: rs}, "del-rs -d -t 10.96.0.10:53 -r 10.244.1.7:53"},
		{Op{Kind: FlushConntrack, VS: vs, RS: rs}, "flush-conntrack TCP 10.96.0.10:53 -> 10.244.1.7"},
		{Op{Kind: EnsureLink}, "ensure-link kube-ipvs0"},
	} {
		if got := c.op.String(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
	if got, want := Describe(Op{Kind: AddRS, VS: vs, RS: rs}), "add real server 10.244.1.7:53 to TCP 10.96.0.10:53"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
