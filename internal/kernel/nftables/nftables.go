// Package nftables is the real implementation of kernel.NFTables: it runs
// transactions on ipvs-proxy's own table in each family, and lists it, with
// sigs.k8s.io/knftables (the library kube-proxy's nftables mode uses), which
// runs the nft binary. Tests use the same code over knftables' fake.
package nftables

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules/nft"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// DefaultTimeout bounds one run of nft.
const DefaultTimeout = 2 * time.Minute

var _ kernel.NFTables = (*Tables)(nil)

// Tables runs nft on ipvs-proxy's table of each family.
type Tables struct {
	nft     map[state.Family]knftables.Interface
	timeout time.Duration
	// nftPath, when set, reads a table with one nft run (readListing);
	// otherwise through knftables' List methods (its fake in tests).
	nftPath string
}

// Open finds nft and checks that it can work on the tables (nft at least
// 1.0.1, and the permission to change nftables): knftables runs
// `nft --version` and a `nft --check` of adding the table.
func Open() (*Tables, error) {
	path, err := exec.LookPath("nft")
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	t := &Tables{nft: map[state.Family]knftables.Interface{}, timeout: DefaultTimeout, nftPath: path}
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		i, err := knftables.New(knftables.Family(nft.Family(f)), nft.TableName)
		if err != nil {
			return nil, fmt.Errorf("nftables (IPv%d): %w", f, err)
		}
		t.nft[f] = i
	}
	return t, nil
}

// With returns Tables over the given knftables interfaces (a fake in
// tests), one per family, each for the table nft.TableName.
func With(v4, v6 knftables.Interface) *Tables {
	return &Tables{nft: map[state.Family]knftables.Interface{state.IPv4: v4, state.IPv6: v6}, timeout: DefaultTimeout}
}

func (t *Tables) iface(f state.Family) (knftables.Interface, error) {
	if i := t.nft[f]; i != nil {
		return i, nil
	}
	return nil, fmt.Errorf("nftables: unknown family %d", f)
}

// Read implements kernel.NFTables.
func (t *Tables) Read(f state.Family) (*kernel.NFTContent, error) {
	i, err := t.iface(f)
	if err != nil {
		return nil, err
	}
	if t.nftPath != "" {
		return t.readListing(f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	names, err := i.ListAll(ctx)
	if knftables.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list table %s %s: %w", nft.Family(f), nft.TableName, err)
	}
	c := &kernel.NFTContent{Chains: map[string][]string{}, Sets: map[string][][]string{}, Maps: map[string][]kernel.NFTMapElement{}}
	for _, name := range names["chain"] {
		c.Chains[name] = []string{}
	}
	rules, err := i.ListRules(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list rules of table %s %s: %w", nft.Family(f), nft.TableName, err)
	}
	for _, r := range rules {
		comment := ""
		if r.Comment != nil {
			comment = *r.Comment
		}
		c.Chains[r.Chain] = append(c.Chains[r.Chain], comment)
	}
	for _, name := range names["set"] {
		elems, err := i.ListElements(ctx, "set", name)
		if err != nil {
			return nil, fmt.Errorf("list set %s of table %s %s: %w", name, nft.Family(f), nft.TableName, err)
		}
		keys := make([][]string, len(elems))
		for n, e := range elems {
			keys[n] = e.Key
		}
		c.Sets[name] = keys
	}
	for _, name := range names["map"] {
		elems, err := i.ListElements(ctx, "map", name)
		if err != nil {
			return nil, fmt.Errorf("list map %s of table %s %s: %w", name, nft.Family(f), nft.TableName, err)
		}
		els := make([]kernel.NFTMapElement, len(elems))
		for n, e := range elems {
			els[n] = kernel.NFTMapElement{Key: e.Key, Value: e.Value}
		}
		c.Maps[name] = els
	}
	return c, nil
}

// Run implements kernel.NFTables.
func (t *Tables) Run(f state.Family, ops []kernel.NFTOp) error {
	return t.run(f, ops, false)
}

// Check implements kernel.NFTables.
func (t *Tables) Check(f state.Family, ops []kernel.NFTOp) error {
	return t.run(f, ops, true)
}

func (t *Tables) run(f state.Family, ops []kernel.NFTOp, check bool) error {
	i, err := t.iface(f)
	if err != nil {
		return err
	}
	tx := i.NewTransaction()
	for _, op := range ops {
		switch op.Verb {
		case kernel.NFTAdd:
			tx.Add(op.Obj)
		case kernel.NFTFlush:
			tx.Flush(op.Obj)
		case kernel.NFTDelete:
			tx.Delete(op.Obj)
		default:
			return fmt.Errorf("nftables: unknown verb %d", op.Verb)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	if check {
		return i.Check(ctx, tx)
	}
	return i.Run(ctx, tx)
}
