package apply

import (
	"fmt"
	"sort"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules/nft"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// readTables reads ipvs-proxy's nftables tables of both families: the
// chains (rules known by their IDs only) and the sets, under the names of
// the ipsets they stand for. A node without nft has none.
func readTables(k kernel.Kernel) (map[state.Family]state.NFTable, map[string]*state.Set, error) {
	tables := map[state.Family]state.NFTable{}
	sets := map[string]*state.Set{}
	if k.NFTables == nil {
		return tables, sets, nil
	}
	names := setNames()
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		c, err := k.NFTables.Read(f)
		if err != nil {
			return nil, nil, err
		}
		if c == nil {
			continue
		}
		t, s, err := fromContent(f, c, names)
		if err != nil {
			return nil, nil, err
		}
		tables[f] = t
		for name, set := range s {
			sets[name] = set
		}
	}
	return tables, sets, nil
}

// fromContent turns what the table of family f holds into state. Sets that
// stand for no ipset are listed in OtherSets.
func fromContent(f state.Family, c *kernel.NFTContent, names *nft.Names) (state.NFTable, map[string]*state.Set, error) {
	var t state.NFTable
	sets := map[string]*state.Set{}
	chains := make([]string, 0, len(c.Chains))
	for name := range c.Chains {
		chains = append(chains, name)
	}
	sort.Strings(chains)
	for _, name := range chains {
		ch := state.NFTChain{Name: name}
		for _, id := range c.Chains[name] {
			ch.Rules = append(ch.Rules, state.NFTRule{ID: id})
		}
		t.Chains = append(t.Chains, ch)
	}
	for name, keys := range c.Sets {
		spec, ok := names.Spec(f, name)
		if !ok || nft.IsMap(spec) {
			t.OtherSets = append(t.OtherSets, name)
			continue
		}
		set := state.NewSet(spec)
		for _, k := range keys {
			e, err := nft.ParseKey(spec.Type, k)
			if err != nil {
				return t, nil, fmt.Errorf("set %s of table %s %s: %w", name, nft.Family(f), nft.TableName, err)
			}
			set.Entries[e] = struct{}{}
		}
		sets[spec.Name] = set
	}
	for name, els := range c.Maps {
		spec, ok := names.Spec(f, name)
		if !ok || !nft.IsMap(spec) {
			t.OtherSets = append(t.OtherSets, state.NFTMapPrefix+name)
			continue
		}
		set := state.NewSet(spec)
		for _, el := range els {
			e, err := nft.ParseKey(spec.Type, el.Key)
			if err == nil {
				e, err = nft.ParseValue(e, el.Value)
			}
			if err != nil {
				return t, nil, fmt.Errorf("map %s of table %s %s: %w", name, nft.Family(f), nft.TableName, err)
			}
			set.Entries[e] = struct{}{}
		}
		sets[spec.Name] = set
	}
	sort.Strings(t.OtherSets)
	return t, sets, nil
}
