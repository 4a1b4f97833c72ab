package nftables

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules/nft"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// readListing reads the whole table with one `nft --json list table`: its
// chains, its rules' comments and its sets' elements. knftables lists a
// table's objects, rules and each set's elements with one nft run each;
// every run costs as much as this one (a process start, a netlink dump), and
// a full sync reads the table every sync period.
func (t *Tables) readListing(f state.Family) (*kernel.NFTContent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.nftPath, "--json", "list", "table", nft.Family(f), nft.TableName)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "No such file or directory") {
			return nil, nil // no table
		}
		return nil, fmt.Errorf("nft --json list table %s %s: %w: %s", nft.Family(f), nft.TableName, err, strings.TrimSpace(stderr.String()))
	}
	return parseListing(stdout.Bytes())
}

// parseListing reads nft's JSON listing of one table (libnftables-json(5)).
func parseListing(out []byte) (*kernel.NFTContent, error) {
	var doc struct {
		NFTables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("nft listing: %w", err)
	}
	c := &kernel.NFTContent{Chains: map[string][]string{}, Sets: map[string][][]string{}, Maps: map[string][]kernel.NFTMapElement{}}
	for _, obj := range doc.NFTables {
		for kind, raw := range obj {
			var err error
			switch kind {
			case "chain":
				var ch struct{ Name string }
				if err = json.Unmarshal(raw, &ch); err == nil && c.Chains[ch.Name] == nil {
					c.Chains[ch.Name] = []string{}
				}
			case "rule":
				var r struct{ Chain, Comment string }
				if err = json.Unmarshal(raw, &r); err == nil {
					c.Chains[r.Chain] = append(c.Chains[r.Chain], r.Comment)
				}
			case "set":
				err = parseSet(raw, c)
			case "map":
				err = parseMap(raw, c)
			}
			if err != nil {
				return nil, fmt.Errorf("nft listing: %s: %w", kind, err)
			}
		}
	}
	return c, nil
}

func parseSet(raw json.RawMessage, c *kernel.NFTContent) error {
	var s struct {
		Name string
		Elem []json.RawMessage
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	keys := make([][]string, 0, len(s.Elem))
	for _, e := range s.Elem {
		k, err := elementKey(e)
		if err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		keys = append(keys, k)
	}
	c.Sets[s.Name] = keys
	return nil
}

// parseMap reads a map's elements: [key, value] pairs.
func parseMap(raw json.RawMessage, c *kernel.NFTContent) error {
	var m struct {
		Name string
		Elem [][]json.RawMessage
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	els := make([]kernel.NFTMapElement, 0, len(m.Elem))
	for _, e := range m.Elem {
		if len(e) != 2 {
			return fmt.Errorf("map %s: element of %d parts, want key and value", m.Name, len(e))
		}
		k, err := elementKey(e[0])
		if err != nil {
			return fmt.Errorf("map %s: %w", m.Name, err)
		}
		v, err := elementKey(e[1])
		if err != nil {
			return fmt.Errorf("map %s: %w", m.Name, err)
		}
		els = append(els, kernel.NFTMapElement{Key: k, Value: v})
	}
	c.Maps[m.Name] = els
	return nil
}

// elementKey reads an element as its key's fields: a string or number, a
// prefix {"prefix": {"addr", "len"}}, a concatenation {"concat": [...]}, or
// any of them wrapped with its attributes in {"elem": {"val": ...}}.
func elementKey(raw json.RawMessage) ([]string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return []string{n.String()}, nil
	}
	var obj struct {
		Concat []json.RawMessage
		Prefix *struct {
			Addr string
			Len  int
		}
		Elem *struct{ Val json.RawMessage }
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("element %s: %w", raw, err)
	}
	switch {
	case obj.Elem != nil:
		return elementKey(obj.Elem.Val)
	case obj.Prefix != nil:
		return []string{obj.Prefix.Addr + "/" + strconv.Itoa(obj.Prefix.Len)}, nil
	case obj.Concat != nil:
		var out []string
		for _, part := range obj.Concat {
			k, err := elementKey(part)
			if err != nil {
				return nil, err
			}
			out = append(out, k...)
		}
		return out, nil
	}
	return nil, errors.New("element " + string(raw) + ": not a value, prefix or concatenation")
}
