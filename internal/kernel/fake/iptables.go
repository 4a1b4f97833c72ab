package fake

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// IPTables is an in-memory set of nat, filter and mangle tables per family that
// interprets iptables-restore --noflush input strictly: appending to a chain
// that does not exist, deleting a rule that is not there, deleting a chain
// that is in use, or matching a set that does not exist fails the whole
// table, as iptables-restore does.
type IPTables struct {
	mu     sync.Mutex
	tables map[state.Family]map[string]*table
	// SetExists reports whether an ipset exists; nil accepts every name.
	SetExists func(name string) bool
	writes    int
}

type table struct {
	order  []string // chain names in creation order, built-ins first
	chains map[string][]string
}

var builtins = map[string][]string{
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
}

var _ kernel.IPTables = (*IPTables)(nil)

// NewIPTables returns empty tables with only the built-in chains.
func NewIPTables() *IPTables {
	f := &IPTables{tables: map[state.Family]map[string]*table{}}
	for _, fam := range []state.Family{state.IPv4, state.IPv6} {
		f.tables[fam] = map[string]*table{}
		for name, chains := range builtins {
			t := &table{chains: map[string][]string{}}
			for _, c := range chains {
				t.order = append(t.order, c)
				t.chains[c] = nil
			}
			f.tables[fam][name] = t
		}
	}
	return f
}

// Save implements kernel.IPTables.
func (f *IPTables) Save(fam state.Family) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, name := range []string{"nat", "filter", "mangle"} {
		t := f.tables[fam][name]
		b.WriteString("*" + name + "\n")
		for _, c := range t.order {
			if slices.Contains(builtins[name], c) {
				b.WriteString(":" + c + " ACCEPT [0:0]\n")
			} else {
				b.WriteString(":" + c + " - [0:0]\n")
			}
		}
		for _, c := range t.order {
			for _, r := range t.chains[c] {
				b.WriteString("-A " + c + " " + r + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String(), nil
}

// Restore implements kernel.IPTables.
func (f *IPTables) Restore(fam state.Family, input string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	var cur *table
	var curName string
	staged := map[string]*table{}
	for n, line := range strings.Split(input, "\n") {
		line = strings.TrimSpace(line)
		fail := func(format string, args ...any) error {
			return fmt.Errorf("iptables-restore: line %d failed: %s", n+1, fmt.Sprintf(format, args...))
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			curName = line[1:]
			t := f.tables[fam][curName]
			if t == nil {
				return fail("unknown table %q", curName)
			}
			cur = t.clone()
		case cur == nil:
			return fail("no table selected")
		case line == "COMMIT":
			staged[curName] = cur
			cur = nil
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if _, ok := cur.chains[name]; !ok {
				cur.order = append(cur.order, name)
			}
			if !slices.Contains(builtins[curName], name) {
				cur.chains[name] = nil // declaring a chain flushes it
			}
		default:
			if err := f.command(cur, curName, line); err != nil {
				return fail("%v", err)
			}
		}
	}
	if cur != nil {
		return fmt.Errorf("iptables-restore: COMMIT expected at end of table %s", curName)
	}
	for n, t := range staged {
		f.tables[fam][n] = t
	}
	return nil
}

func (f *IPTables) command(t *table, tableName, line string) error {
	fields := strings.SplitN(line, " ", 3)
	if len(fields) < 2 {
		return fmt.Errorf("bad command %q", line)
	}
	cmd, chain := fields[0], fields[1]
	rule := ""
	if len(fields) == 3 {
		rule = fields[2]
	}
	if _, ok := t.chains[chain]; !ok {
		return fmt.Errorf("chain %s does not exist", chain)
	}
	if cmd == "-A" || cmd == "-I" {
		if err := f.checkRule(t, rule); err != nil {
			return err
		}
	}
	switch cmd {
	case "-A":
		t.chains[chain] = append(t.chains[chain], rule)
	case "-I":
		t.chains[chain] = append([]string{rule}, t.chains[chain]...)
	case "-D":
		i := slices.Index(t.chains[chain], rule)
		if i < 0 {
			return fmt.Errorf("bad rule (does a matching rule exist in that chain?)")
		}
		t.chains[chain] = slices.Delete(t.chains[chain], i, i+1)
	case "-X":
		if slices.Contains(builtins[tableName], chain) || len(t.chains[chain]) > 0 {
			return fmt.Errorf("cannot delete chain %s: built-in or not empty", chain)
		}
		for _, c := range t.order {
			for _, r := range t.chains[c] {
				if jumpsTo(r, chain) {
					return fmt.Errorf("cannot delete chain %s: still referenced", chain)
				}
			}
		}
		delete(t.chains, chain)
		t.order = slices.DeleteFunc(t.order, func(c string) bool { return c == chain })
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}

func (f *IPTables) checkRule(t *table, rule string) error {
	fields := strings.Fields(rule)
	for i, w := range fields {
		if (w == "-j" || w == "-g") && i+1 < len(fields) {
			target := fields[i+1]
			if _, ok := t.chains[target]; !ok && strings.ToUpper(target) == target && strings.HasPrefix(target, "KUBE-") {
				return fmt.Errorf("couldn't load target %q", target)
			}
		}
		if (w == "--match-set" || w == "--map-set") && i+1 < len(fields) && f.SetExists != nil && !f.SetExists(fields[i+1]) {
			return fmt.Errorf("set %s doesn't exist", fields[i+1])
		}
	}
	return nil
}

func jumpsTo(rule, chain string) bool {
	fields := strings.Fields(rule)
	for i, w := range fields {
		if (w == "-j" || w == "-g") && i+1 < len(fields) && fields[i+1] == chain {
			return true
		}
	}
	return false
}

func (t *table) clone() *table {
	c := &table{order: slices.Clone(t.order), chains: map[string][]string{}}
	for k, v := range t.chains {
		c.chains[k] = slices.Clone(v)
	}
	return c
}

// UsesSet reports whether any rule of either family matches set name.
func (f *IPTables) UsesSet(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tables := range f.tables {
		for _, t := range tables {
			for _, rules := range t.chains {
				for _, r := range rules {
					if strings.Contains(r+" ", "--match-set "+name+" ") || strings.Contains(r+" ", "--map-set "+name+" ") {
						return true
					}
				}
			}
		}
	}
	return false
}

// Writes returns how many restores were run.
func (f *IPTables) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}
